"""Pseudonymised exports: keyed pseudonyms for participants, contact details taken out of text.

Pure functions and no I/O. `redact_text` replaces e-mail addresses, URLs and
phone numbers with `[email]`, `[url]` and `[phone]`, in that order (an
address's domain is not left behind as a URL). It errs towards keeping what
people said: a number is a phone number only in a phone number's shape
(a `+` and 7 to 15 digits, a trunk `0` and 9 or more, an area code in
parentheses, or the North American 3-3-4 groups), never a date, time, price,
version number or score; a name with a dot is a web address only with a
scheme, `www.`, a path, or a well-known top-level domain, so file names stay.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import AsyncIterator
from typing import Any, TypeVar

from src.domain.models.session import Session
from src.domain.models.utterance import Utterance

__all__ = [
    "EMAIL_MARK",
    "PHONE_MARK",
    "URL_MARK",
    "Pseudonymizer",
    "pseudonym",
    "redact_json",
    "redact_text",
]

EMAIL_MARK = "[email]"
URL_MARK = "[url]"
PHONE_MARK = "[phone]"

_PSEUDONYM_HEX_DIGITS = 32

# The local part may hold an apostrophe (o'neil@...), though not at either end;
# an address starts at the start of a word (never after "o'"), so each word is read once.
_EMAIL = re.compile(
    r"(?<![\w.%+-])(?<!\w')[\w.%+-](?:[\w.%+'-]*[\w.%+-])?"
    r"@(?:[^\W_](?:[\w-]*[^\W_])?\.)+[^\W\d_]{2,}(?![\w-])"
)

# Top-level domains a bare name (no scheme, www. or path) must end in to count
# as a web address; the common ones, minus those that are also file
# extensions (.py, .md, .zip, .sh, .pl, .ai, .rs, .app).
_KNOWN_TLDS = (
    "com|org|net|edu|gov|mil|int|info|biz|io|co|me|tv|eu|uk|de|fr|nl|be|at|ch|es|it|pt|ie|"
    "se|no|dk|fi|is|cz|sk|hu|ro|bg|gr|tr|ru|ua|us|ca|mx|br|ar|cl|au|nz|jp|cn|kr|tw|hk|sg|"
    "in|za|ly|gl|dev|online|site|org\\.uk|рф"
)
_LABEL = r"[^\W_](?:[\w-]{0,61}[^\W_])?"
_PORT = r"(?::\d{1,5})?"
_URL_TAIL = r"[^\s<>\"'\[\]{}]*"
_URL = re.compile(
    rf"""
    \b(?:https?|ftp)://{_URL_TAIL}                                        # a scheme
    | (?<![\w.@-])www\.{_LABEL}(?:\.{_LABEL})*{_URL_TAIL}                 # www.
    | (?<![\w.@/-])(?:{_LABEL}\.)+[^\W\d_]{{2,63}}{_PORT}/{_URL_TAIL}     # a path
    | (?<![\w.@/-])(?:{_LABEL}\.)+(?:{_KNOWN_TLDS}){_PORT}(?![\w-]|\.[^\W\d_])  # a known TLD
    """,
    re.VERBOSE | re.IGNORECASE,
)
# What ends a sentence rather than a URL, unless the URL opened it: "(see x.com/a)."
_URL_TRAILING = ".,;:!?'\""

_SEPARATOR = r"[ .\-\u00a0]"
_DIGIT_OR_AREA = r"(?:\(\d{1,5}\)|\d)"
_NOT_AFTER = r"(?![\w]|[.,]\d)"
_PHONE_SHAPES = (
    # +44 20 7946 0958, (+44) 20 7946 0958, +1 (555) 123-4567
    rf"(?:(?<![\w+(])\+|(?<![\w+])\(\+)\d{{1,3}}\)?(?:{_SEPARATOR}?{_DIGIT_OR_AREA}){{4,20}}",
    # (555) 123-4567, 1 (800) 555-0199, (030) 1234 5678
    rf"(?<![\w.,)+-])(?:1{_SEPARATOR}?)?\(\d{{2,5}}\){_SEPARATOR}?\d{{2,5}}"
    rf"(?:{_SEPARATOR}?\d{{2,5}}){{0,3}}",
    # 020 7946 0958, 030/12345678, 0044 20 7946 0958
    r"(?<![\w.,+/-])0\d{1,4}(?:[ .\-/\u00a0]\d{2,8}){1,4}",
    # 07700900123
    r"(?<![\w.,+/-])0\d{8,14}",
    # 555-123-4567, 555.123.4567, 1-800-555-0199
    rf"(?<![\w.,+/-])(?:1{_SEPARATOR})?\d{{3}}{_SEPARATOR}\d{{3}}{_SEPARATOR}\d{{4}}",
)
_PHONE = re.compile("|".join(f"(?:{shape}){_NOT_AFTER}" for shape in _PHONE_SHAPES))
_DATE = re.compile(r"\d{1,2}[./-]\d{1,2}[./-]\d{4}|\d{4}[./-]\d{1,2}[./-]\d{1,2}")
_MIN_DIGITS = {"+": 7, "0": 9}
_MAX_DIGITS = 15


def _url(match: re.Match[str]) -> str:
    url = match.group()
    kept = ""
    while url and (
        url[-1] in _URL_TRAILING or (url[-1] == ")" and url.count(")") > url.count("("))
    ):
        url, kept = url[:-1], url[-1] + kept
    return URL_MARK + kept


def _phone(match: re.Match[str]) -> str:
    number = match.group()
    digits = sum(character.isdigit() for character in number)
    least = _MIN_DIGITS.get(number.lstrip("(")[0], 7)
    if not least <= digits <= _MAX_DIGITS:
        return number
    if "+" not in number and _DATE.search(number):  # no date has a "+"
        return number
    return PHONE_MARK


def redact_text(text: str) -> str:
    """`text` with e-mail addresses, URLs and phone numbers replaced by their marks."""
    text = _EMAIL.sub(EMAIL_MARK, text)
    text = _URL.sub(_url, text)
    return _PHONE.sub(_phone, text)


JSON = TypeVar("JSON")


def redact_json(value: JSON) -> JSON:
    """A JSON value with every string in it redacted, at any depth; keys are kept as they are."""
    redacted: Any
    if isinstance(value, str):
        redacted = redact_text(value)
    elif isinstance(value, dict):
        redacted = {key: redact_json(item) for key, item in value.items()}
    elif isinstance(value, list):
        redacted = [redact_json(item) for item in value]
    else:
        redacted = value
    return redacted  # type: ignore[no-any-return]


def pseudonym(participant_id: str, key: bytes) -> str:
    """A participant's stable pseudonym under `key`: HMAC-SHA256, shown as `p-` and 32 hex digits.

    The same id and key always give the same pseudonym; without the key it
    cannot be turned back into the id, nor checked against a guessed one.
    """
    digest = hmac.new(key, participant_id.encode(), hashlib.sha256).hexdigest()
    return "p-" + digest[:_PSEUDONYM_HEX_DIGITS]


class Pseudonymizer:
    """Turns a session's record into its pseudonymised form for an export."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    def participant(self, participant_id: str) -> str:
        """The participant's pseudonym."""
        return pseudonym(participant_id, self._key)

    def session(self, session: Session) -> Session:
        """The session with its participant id pseudonymised."""
        if session.participant_id is None:
            return session
        return session.model_copy(
            update={"participant_id": self.participant(session.participant_id)}
        )

    def utterance(self, utterance: Utterance) -> Utterance:
        """The utterance with contact details taken out of its text and metadata."""
        return utterance.model_copy(
            update={
                "text": redact_text(utterance.text),
                "metadata": redact_json(utterance.metadata),
            }
        )

    async def utterances(self, utterances: AsyncIterator[Utterance]) -> AsyncIterator[Utterance]:
        """Each utterance as `utterance` makes it, as they come."""
        async for utterance in utterances:
            yield self.utterance(utterance)
