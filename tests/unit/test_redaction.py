"""Contact details in real-world shapes are redacted; the numbers and names people use are not."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from hypothesis import given
from hypothesis import strategies as st

from src.domain.redaction import pseudonym, redact_json, redact_text

# (text as said, text as exported): each shape inside a sentence, as people say it.
REDACTED = [
    # E-mail addresses
    ("write to jane.doe@example.com today", "write to [email] today"),
    ("jane+research@example.org", "[email]"),
    ("J.Doe+tag-2026@mail.uni-muenchen.de.", "[email]."),
    ("first_last@sub.domain.example.co.uk, thanks", "[email], thanks"),
    ("(contact: info@bücher.de)", "(contact: [email])"),
    ("mail JOHN.SMITH@EXAMPLE.COM now", "mail [email] now"),
    ("o'neil@example.ie", "[email]"),
    ("firstname.o'reilly@example.com", "[email]"),
    ("'jane@example.com'", "'[email]'"),
    ("user%list@example.net", "[email]"),
    ("<x1@a-b.example.io>", "<[email]>"),
    ("Email: 12345@numbers.example.com", "Email: [email]"),
    # URLs with a scheme, www., a path, or a known top-level domain
    ("see https://example.com/path?q=1&r=2#top.", "see [url]."),
    ("http://localhost:8000/docs", "[url]"),
    ("(https://en.wikipedia.org/wiki/Coffee_(drink))", "([url])"),
    ("ftp://files.example.org/pub/data.csv", "[url]"),
    ("go to www.example.com", "go to [url]"),
    ("www.example.co.uk/about-us, please", "[url], please"),
    ("example.com/survey?id=42", "[url]"),
    ("bit.ly/3xYz", "[url]"),
    ("the site coffee-lovers.net has it", "the site [url] has it"),
    ("Visit Example.ORG!", "Visit [url]!"),
    ("münchen.de/kaffee", "[url]"),
    ("пример.рф", "[url]"),
    ("https://xn--mnchen-3ya.de/", "[url]"),
    ("docs.python.org/3/library/re.html", "[url]"),
    ("https://example.com:8443/a/b;c?d=e", "[url]"),
    ("HTTPS://EXAMPLE.COM", "[url]"),
    ("shop.example.io:8080", "[url]"),
    ("http://192.168.0.1/admin", "[url]"),
    # Phone numbers, international
    ("call +1 (555) 123-4567 now", "call [phone] now"),
    ("+44 20 7946 0958", "[phone]"),
    ("+44 (0)20 7946 0958", "[phone]"),
    ("+49 30 12345678", "[phone]"),
    ("+49 (0)30 1234-5678", "[phone]"),
    ("+33 1 23 45 67 89", "[phone]"),
    ("+33.1.23.45.67.89", "[phone]"),
    ("+81-3-1234-5678", "[phone]"),
    ("+7 (495) 123-45-67", "[phone]"),
    ("+86 138 0013 8000", "[phone]"),
    ("+91 98765 43210", "[phone]"),
    ("+61 2 9876 5432", "[phone]"),
    ("+353 1 234 5678", "[phone]"),
    ("+1.555.123.4567", "[phone]"),
    ("+15551234567", "[phone]"),
    ("+55 11 91234-5678", "[phone]"),
    ("my number is +31 6 12345678.", "my number is [phone]."),
    ("(+44) 20 7946 0958", "[phone]"),
    ("tel:+15551234567", "tel:[phone]"),
    ("+34 912 34 56 78", "[phone]"),
    ("+48 22 123 45 67", "[phone]"),
    # Phone numbers, national
    ("(555) 123-4567", "[phone]"),
    ("555-123-4567", "[phone]"),
    ("555.123.4567", "[phone]"),
    ("555 123 4567", "[phone]"),
    ("1-800-555-0199", "[phone]"),
    ("1 (800) 555-0199", "[phone]"),
    ("020 7946 0958", "[phone]"),
    ("07700 900123", "[phone]"),
    ("07700900123", "[phone]"),
    ("0171 1234567", "[phone]"),
    ("030/12345678", "[phone]"),
    ("01 23 45 67 89", "[phone]"),
    ("0044 20 7946 0958", "[phone]"),
    ("(030) 1234 5678", "[phone]"),
    ("ring 089-123-4567 or 089 1234 5678", "ring [phone] or [phone]"),
    # Several in one text
    (
        "Jane (jane@example.com, +44 20 7946 0958) said see www.example.com.",
        "Jane ([email], [phone]) said see [url].",
    ),
]

# What people say that looks a little like contact details and must stay as said.
KEPT = [
    "the interview was on 2026-11-30",
    "on 30.11.2026 at 14:30",
    "30/11/2026",
    "11/30/26",
    "2026-11-30 14:30:15",
    "01.12.2026 14:30",
    "at 9:05 am, or 21:45",
    "it cost $1,299.99",
    "it cost €1.299,99 or £12.50",
    "1,000,000 people",
    "10.000 Menschen",
    "Python 3.11.7",
    "version v2.4.1-beta",
    "section 3.2.1",
    "45% of us, 12.5% of them, +20% growth",
    "back in 2026, or 1999-2001",
    "42",
    "1234",
    "room 101, floor 3",
    "a score of 98.6",
    "0.75 and 4.5/5",
    "rated 7 8 9",
    "ranked 10 20 30 40 50",
    "between 100-1000 people",
    "e.g. coffee, i.e. tea, etc.",
    "U.S. and a.m. and p.m.",
    "Mr.Smith and Dr.Jones",
    "report.pdf and data.csv and notes.md",
    "script.py, archive.zip, image.png, deck.pptx",
    "main.rs and run.sh",
    "ISBN 978-3-16-148410-0",
    "ISO 9001, COVID-19",
    "24/7 service",
    "a 1:2 ratio",
    "-3.5 degrees",
    "No. 10",
    "@username on social media",
    "me@home",
    "user@localhost",
    "the end.Then we left",
    "1.5 hours",
    "pages 12-13",
    "192.168.1.1",
    "+5 points",
    "order 12345678",
    "0.5 percent",
]


def test_the_corpus_is_large_enough() -> None:
    assert len(REDACTED) >= 50
    assert len(KEPT) >= 30


@pytest.mark.parametrize(("said", "exported"), REDACTED)
def test_contact_details_are_redacted(said: str, exported: str) -> None:
    assert redact_text(said) == exported


@pytest.mark.parametrize("said", KEPT)
def test_near_misses_are_kept_as_said(said: str) -> None:
    assert redact_text(said) == said


def test_metadata_is_redacted_at_every_depth_and_keys_are_kept() -> None:
    metadata = {
        "note": "mail me at a@example.com",
        "contacts": [{"phone": "+44 20 7946 0958"}, ["www.example.com", 7, None, True]],
        "jane@example.com": 1.5,
    }

    assert redact_json(metadata) == {
        "note": "mail me at [email]",
        "contacts": [{"phone": "[phone]"}, ["[url]", 7, None, True]],
        "jane@example.com": 1.5,
    }


def test_a_pseudonym_is_stable_for_a_key_and_differs_between_keys() -> None:
    key, other_key = b"k" * 32, b"j" * 32

    first = pseudonym("participant-17", key)

    assert first == pseudonym("participant-17", key)
    assert first != pseudonym("participant-18", key)
    assert first != pseudonym("participant-17", other_key)
    assert first == "p-" + hmac.new(key, b"participant-17", hashlib.sha256).hexdigest()[:32]


@given(st.text(max_size=200) | st.text(alphabet="abc.@+-()/ 0123456789'wx:", max_size=60))
def test_redacting_twice_changes_nothing_more(text: str) -> None:
    once = redact_text(text)

    assert redact_text(once) == once


@given(
    st.text(
        alphabet=st.characters(exclude_categories=["Nd"], exclude_characters="@./:+"), max_size=200
    )
)
def test_text_without_digits_dots_or_at_signs_is_kept_as_it_is(text: str) -> None:
    assert redact_text(text) == text
