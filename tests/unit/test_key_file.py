"""The key file API_KEYS names: what is written, what is refused, and the key ring read from it."""

from __future__ import annotations

import os
import stat
import threading
import time
import tomllib
from datetime import UTC, datetime
from pathlib import Path

import pytest

from src.core.errors import KeyFileError, KeyNameError
from src.core.keys import (
    API_KEY_NAME,
    Caller,
    KeyRing,
    Scope,
    _FileState,
    add_key,
    key_digest,
    read_key_file,
    remove_key,
    with_implied,
)

DIGEST = "ab" * 32
CREATED = "2026-11-30T04:52:51Z"


def entry(name: str = "analyst", scopes: str = '["read"]', sha256: str = DIGEST) -> str:
    return (
        f'[[key]]\nname = "{name}"\nscopes = {scopes}\nsha256 = "{sha256}"\ncreated = {CREATED}\n'
    )


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    return tmp_path / "config" / "keys.toml"


class TestScopes:
    @pytest.mark.parametrize(
        ("given", "implied"),
        [
            ([Scope.READ], {Scope.READ}),
            ([Scope.WRITE], {Scope.READ, Scope.WRITE}),
            ([Scope.ADMIN], {Scope.READ, Scope.WRITE, Scope.ADMIN}),
            ([Scope.READ, Scope.ADMIN], {Scope.READ, Scope.WRITE, Scope.ADMIN}),
        ],
    )
    def test_admin_implies_write_and_write_implies_read(
        self, given: list[Scope], implied: set[Scope]
    ) -> None:
        assert with_implied(given) == implied


class TestAdding:
    def test_the_file_keeps_the_digest_scopes_and_date_never_the_key(self, key_file: Path) -> None:
        now = datetime(2026, 11, 30, 4, 52, 51, 123456, tzinfo=UTC)

        key = add_key(key_file, "analyst", [Scope.WRITE], now=now)

        text = key_file.read_text()
        assert key not in text
        (stored,) = read_key_file(key_file)
        assert stored.name == "analyst"
        assert stored.scopes == (Scope.READ, Scope.WRITE)
        assert stored.sha256 == key_digest(key.encode()).hex()
        assert stored.created == now.replace(microsecond=0)
        assert tomllib.loads(text)["key"][0]["name"] == "analyst"

    def test_keys_are_long_random_and_spottable(self, key_file: Path) -> None:
        keys = {add_key(key_file, f"k{number}", [Scope.READ]) for number in range(20)}

        assert len(keys) == 20
        assert all(key.startswith("isk_") and len(key) == 4 + 43 for key in keys)

    def test_the_file_is_private_and_replaced_whole(self, key_file: Path) -> None:
        add_key(key_file, "first", [Scope.READ])
        before = key_file.stat().st_ino

        add_key(key_file, "second", [Scope.READ])

        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        assert key_file.stat().st_ino != before  # a new file renamed over the old one
        assert sorted(os.listdir(key_file.parent)) == ["keys.toml"]
        assert [key.name for key in read_key_file(key_file)] == ["first", "second"]

    def test_a_taken_name_is_refused_and_the_file_is_unchanged(self, key_file: Path) -> None:
        add_key(key_file, "analyst", [Scope.READ])
        before = key_file.read_bytes()

        with pytest.raises(KeyNameError, match="already a key named 'analyst'"):
            add_key(key_file, "analyst", [Scope.ADMIN])

        assert key_file.read_bytes() == before

    @pytest.mark.parametrize(
        "name", ["", "two words", "-dash", "x" * 65, "é", 'quote"', "line\n", API_KEY_NAME]
    )
    def test_a_name_that_is_no_key_name_is_refused(self, key_file: Path, name: str) -> None:
        with pytest.raises(KeyNameError):
            add_key(key_file, name, [Scope.READ])

        assert not key_file.exists()

    def test_a_malformed_file_is_not_overwritten(self, key_file: Path) -> None:
        key_file.parent.mkdir()
        key_file.write_text("not toml [")

        with pytest.raises(KeyFileError, match="not valid TOML"):
            add_key(key_file, "analyst", [Scope.READ])

        assert key_file.read_text() == "not toml ["

    def test_adds_at_the_same_time_all_land(self, key_file: Path) -> None:
        names = [f"worker-{number}" for number in range(8)]
        threads = [
            threading.Thread(target=add_key, args=(key_file, name, [Scope.READ])) for name in names
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        assert sorted(key.name for key in read_key_file(key_file)) == names


class TestRemoving:
    def test_remove_keeps_the_others(self, key_file: Path) -> None:
        add_key(key_file, "first", [Scope.READ])
        add_key(key_file, "second", [Scope.ADMIN])

        remove_key(key_file, "first")

        assert [key.name for key in read_key_file(key_file)] == ["second"]

    def test_an_unknown_name_is_refused(self, key_file: Path) -> None:
        add_key(key_file, "first", [Scope.READ])

        with pytest.raises(KeyNameError, match="no key named 'second'"):
            remove_key(key_file, "second")


class TestMalformedFiles:
    @pytest.mark.parametrize(
        ("text", "reason"),
        [
            ("[[key]\n", "not valid TOML"),
            (entry(scopes='["reed"]'), "key 1 ('analyst'): scopes.0: Input should be"),
            (entry(scopes="[]"), "scopes: Tuple should have at least 1 item"),
            (entry() + "\n" + entry(sha256="cd" * 32), "the name 'analyst' is used twice"),
            (entry() + "\n" + entry(name="other"), "the key named 'other' is the same"),
            (entry() + 'owner = "ana"\n', "owner: Extra inputs are not permitted"),
            (entry(sha256="isk_pasted-key-by-mistake"), "sha256: String should match pattern"),
            (entry(name="bad name"), "name: String should match pattern"),
            (entry(name=API_KEY_NAME), "kept for the key in API_KEY"),
            (entry().replace(CREATED, '"yesterday"'), "created: Input should be"),
            (
                entry().replace(CREATED, "2026-11-30T04:52:51"),
                "created: Input should have timezone",
            ),
            ('keys = "x"\n', "unknown entry 'keys'"),
            ('key = "x"\n', "'key' must be [[key]] tables"),
        ],
    )
    def test_each_problem_is_one_line_naming_api_keys_and_the_file(
        self, key_file: Path, text: str, reason: str
    ) -> None:
        key_file.parent.mkdir()
        key_file.write_text(text)

        with pytest.raises(KeyFileError) as caught:
            read_key_file(key_file)

        message = str(caught.value)
        assert message.startswith(f"cannot use the key file {key_file} (API_KEYS): ")
        assert reason in message
        assert "\n" not in message
        assert "pasted-key" not in message

    def test_a_missing_file(self, key_file: Path) -> None:
        with pytest.raises(KeyFileError, match="there is no such file"):
            read_key_file(key_file)

    def test_a_folder(self, key_file: Path) -> None:
        key_file.mkdir(parents=True)

        with pytest.raises(KeyFileError, match=r"API_KEYS.*Is a directory"):
            read_key_file(key_file)

    def test_bytes_that_are_not_utf8(self, key_file: Path) -> None:
        key_file.parent.mkdir()
        key_file.write_bytes(b"# \xff\n")

        with pytest.raises(KeyFileError, match="not UTF-8"):
            read_key_file(key_file)

    def test_an_empty_file_holds_no_keys(self, key_file: Path) -> None:
        key_file.parent.mkdir()
        key_file.write_text("# nothing yet\n")

        assert read_key_file(key_file) == []


class TestKeyRing:
    def test_api_key_is_named_api_key_with_every_scope(self) -> None:
        ring = KeyRing("k" * 24, None)

        assert ring.caller(b"k" * 24) == Caller(API_KEY_NAME, frozenset(Scope))
        assert ring.caller(b"k" * 23) is None

    def test_file_keys_with_their_implied_scopes_beside_api_key(self, key_file: Path) -> None:
        writer = add_key(key_file, "writer", [Scope.WRITE])
        ring = KeyRing("k" * 24, key_file)
        ring.load()

        assert ring.caller(writer.encode()) == Caller(
            "writer", frozenset({Scope.READ, Scope.WRITE})
        )
        assert ring.caller(b"k" * 24) == Caller(API_KEY_NAME, frozenset(Scope))
        assert ring.caller(writer.encode() + b"x") is None
        assert ring.caller(key_digest(writer.encode()).hex().encode()) is None

    def test_a_changed_file_is_read_again(self, key_file: Path) -> None:
        first = add_key(key_file, "first", [Scope.READ])
        ring = KeyRing(None, key_file)
        ring.load()

        second = add_key(key_file, "second", [Scope.READ])
        remove_key(key_file, "first")

        assert ring.caller(second.encode()) == Caller("second", frozenset({Scope.READ}))
        assert ring.caller(first.encode()) is None

    def test_a_file_that_turns_bad_leaves_the_keys_read_last(self, key_file: Path) -> None:
        key = add_key(key_file, "first", [Scope.READ])
        ring = KeyRing(None, key_file)
        ring.load()

        key_file.write_text("broken [")
        assert ring.caller(key.encode()) == Caller("first", frozenset({Scope.READ}))
        key_file.unlink()
        assert ring.caller(key.encode()) == Caller("first", frozenset({Scope.READ}))

        later = add_key(key_file, "later", [Scope.ADMIN])
        assert ring.caller(later.encode()) == Caller("later", frozenset(Scope))
        assert ring.caller(key.encode()) is None

    def test_a_change_the_stat_cannot_show_is_seen_while_the_file_is_recent(
        self, key_file: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # With one-second timestamps, two writes within a second can leave one
        # stat behind (same inode reused, same size): the stat alone misses it.
        add_key(key_file, "first", [Scope.READ])
        ring = KeyRing(None, key_file)
        ring.load()
        stale = _FileState.of(key_file)
        monkeypatch.setattr(_FileState, "of", classmethod(lambda cls, path: stale))

        later = add_key(key_file, "later", [Scope.READ])

        assert ring.caller(later.encode()) == Caller("later", frozenset({Scope.READ}))

    def test_a_stat_is_trusted_once_the_file_is_two_seconds_old(self, key_file: Path) -> None:
        add_key(key_file, "first", [Scope.READ])
        fresh = _FileState.of(key_file)

        assert fresh is not None and fresh.is_recent()
        assert not _FileState(fresh.identity, time.time_ns() - 2_000_000_001).is_recent()

    def test_load_refuses_a_bad_file(self, key_file: Path) -> None:
        with pytest.raises(KeyFileError, match="API_KEYS"):
            KeyRing(None, key_file).load()
