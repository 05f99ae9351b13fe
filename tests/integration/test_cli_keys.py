"""`interview-system keys add|list|remove`, and `serve` refusing a bad key file."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner, Result

from src.cli import cli
from src.core.keys import key_digest, read_key_file
from tests.servers import SERVER, free_port, running_server

pytestmark = pytest.mark.sqlite

API_KEY = "k" * 24


def invoke(*args: str, **env: str) -> Result:
    return CliRunner().invoke(cli, list(args), env={"API_KEY": "", **env}, catch_exceptions=False)


def run(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SERVER), *args],
        cwd=cwd,
        env={**os.environ, "API_KEY": "", **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    return tmp_path / "secrets" / "keys.toml"


def test_the_keys_commands_have_help() -> None:
    listed = invoke("--help")
    group = invoke("keys", "--help")
    add = invoke("keys", "add", "--help")

    assert "  keys " in listed.stdout
    for command in ("add", "list", "remove"):
        assert f"  {command} " in group.stdout
    assert "admin implies write, write" in " ".join(add.stdout.split())
    assert "[required]" in add.stdout


class TestAdd:
    def test_the_key_is_the_last_word_and_only_its_digest_is_kept(self, key_file: Path) -> None:
        result = invoke("keys", "add", "analyst", "--scope", "read", API_KEYS=str(key_file))

        assert result.exit_code == 0, result.output
        key = result.stdout.split()[-1]
        assert result.stdout.endswith(f"\n{key}\n")
        assert "'analyst' (read)" in result.stdout
        (stored,) = read_key_file(key_file)
        assert (stored.name, stored.sha256) == ("analyst", key_digest(key.encode()).hex())
        assert key not in key_file.read_text()
        assert key not in result.stderr

    @pytest.mark.parametrize(
        ("scopes", "granted"),
        [
            (["write"], "(read, write)"),
            (["admin"], "(read, write, admin)"),
            (["read", "write"], "(read, write)"),
        ],
    )
    def test_higher_scopes_bring_the_lower_ones(
        self, key_file: Path, scopes: list[str], granted: str
    ) -> None:
        flags = [part for scope in scopes for part in ("--scope", scope)]

        result = invoke("keys", "add", "someone", *flags, API_KEYS=str(key_file))

        assert result.exit_code == 0
        assert granted in result.stdout

    def test_a_taken_name_is_refused_in_one_line(self, key_file: Path) -> None:
        invoke("keys", "add", "analyst", "--scope", "read", API_KEYS=str(key_file))
        before = key_file.read_bytes()

        result = invoke("keys", "add", "analyst", "--scope", "admin", API_KEYS=str(key_file))

        assert result.exit_code == 1
        assert result.stdout == ""
        assert result.stderr.splitlines() == [
            f"interview-system: there is already a key named 'analyst' in {key_file}"
        ]
        assert key_file.read_bytes() == before

    @pytest.mark.parametrize(
        ("args", "code", "message"),
        [
            (["keys", "add", "analyst"], 2, "keys add needs --scope read, write or admin"),
            (["keys", "add", "analyst", "--scope", "owner"], 2, "'owner' is not one of"),
            (["keys", "add", "two words", "--scope", "read"], 1, "is not a key name"),
            (["keys", "add", "api_key", "--scope", "read"], 1, "kept for the key in API_KEY"),
        ],
    )
    def test_bad_arguments_are_one_line(
        self, key_file: Path, args: list[str], code: int, message: str
    ) -> None:
        result = invoke(*args, API_KEYS=str(key_file))

        assert result.exit_code == code
        assert len(result.stderr.splitlines()) == 1
        assert message in result.stderr
        assert not key_file.exists()

    @pytest.mark.parametrize(
        "command", [["add", "x", "--scope", "read"], ["list"], ["remove", "x"]]
    )
    def test_without_api_keys_every_command_says_so(self, command: list[str]) -> None:
        result = invoke("keys", *command, API_KEYS="")

        assert result.exit_code == 2
        assert result.stderr.splitlines() == [
            "interview-system: API_KEYS is not set: set it to the path of the key file"
        ]

    def test_a_key_file_under_a_file_is_one_line_naming_api_keys(self, tmp_path: Path) -> None:
        (tmp_path / "plain").write_text("")
        key_file = tmp_path / "plain" / "more" / "keys.toml"

        result = invoke("keys", "add", "analyst", "--scope", "read", API_KEYS=str(key_file))

        assert result.exit_code == 1
        assert result.stdout == ""
        assert result.stderr.splitlines() == [
            f"interview-system: cannot use the key file {key_file} (API_KEYS): "
            f"{tmp_path / 'plain'} is a file, not a folder"
        ]


class TestList:
    def test_names_scopes_and_dates_never_keys_or_digests(self, key_file: Path) -> None:
        added = [
            invoke("keys", "add", name, "--scope", scope, API_KEYS=str(key_file)).stdout.split()[-1]
            for name, scope in [("analyst", "read"), ("lead", "admin")]
        ]

        result = invoke("keys", "list", API_KEYS=str(key_file))

        assert result.exit_code == 0
        lines = result.stdout.splitlines()
        assert lines[0].split() == ["NAME", "SCOPES", "CREATED"]
        assert lines[1].startswith("analyst  read ")
        assert lines[2].startswith("lead     read, write, admin  ")
        assert lines[2].endswith(" UTC")
        for key in added:
            assert key not in result.output
            assert key_digest(key.encode()).hex() not in result.output

    def test_api_key_is_listed_without_its_value(self, key_file: Path) -> None:
        invoke("keys", "add", "analyst", "--scope", "read", API_KEYS=str(key_file))

        result = invoke("keys", "list", API_KEYS=str(key_file), API_KEY=API_KEY)

        assert result.stdout.splitlines()[-1].split()[:2] == ["api_key", "read,"]
        assert API_KEY not in result.output

    def test_dates_are_shown_in_utc(self, key_file: Path) -> None:
        key_file.parent.mkdir()
        key_file.write_text(
            f'[[key]]\nname = "x"\nscopes = ["read"]\nsha256 = "{"ab" * 32}"\n'
            "created = 2026-11-30T09:00:00+02:00\n"
        )

        result = invoke("keys", "list", API_KEYS=str(key_file))

        assert result.stdout.splitlines()[1].endswith("2026-11-30 07:00:00 UTC")

    def test_a_malformed_file_is_one_line_naming_api_keys(self, key_file: Path) -> None:
        key_file.parent.mkdir()
        key_file.write_text('[[key]]\nname = "x"\nscopes = ["owner"]\n')

        result = invoke("keys", "list", API_KEYS=str(key_file))

        assert result.exit_code == 1
        assert len(result.stderr.splitlines()) == 1
        assert (
            f"cannot use the key file {key_file} (API_KEYS): key 1 ('x'): scopes.0" in result.stderr
        )

    def test_a_missing_file_says_how_to_make_one(self, key_file: Path) -> None:
        result = invoke("keys", "list", API_KEYS=str(key_file))

        assert result.exit_code == 1
        assert "there is no such file (interview-system keys add creates it)" in result.stderr


class TestRemove:
    def test_remove_takes_the_key_out(self, key_file: Path) -> None:
        invoke("keys", "add", "analyst", "--scope", "read", API_KEYS=str(key_file))
        invoke("keys", "add", "lead", "--scope", "admin", API_KEYS=str(key_file))

        result = invoke("keys", "remove", "analyst", API_KEYS=str(key_file))

        assert result.exit_code == 0
        assert [key.name for key in read_key_file(key_file)] == ["lead"]

    def test_an_unknown_name_is_exit_1_in_one_line(self, key_file: Path) -> None:
        invoke("keys", "add", "analyst", "--scope", "read", API_KEYS=str(key_file))

        result = invoke("keys", "remove", "nobody", API_KEYS=str(key_file))

        assert result.exit_code == 1
        assert result.stderr.splitlines() == [
            f"interview-system: there is no key named 'nobody' in {key_file}"
        ]


def test_keys_added_and_removed_by_the_command_count_on_a_running_server(tmp_path: Path) -> None:
    key_file = tmp_path / "keys.toml"
    first = run("keys", "add", "first", "--scope", "read", cwd=tmp_path, API_KEYS=str(key_file))
    env = {"DATABASE_PATH": str(tmp_path / "s.db"), "DATABASE_URL": "", "API_KEYS": str(key_file)}

    with running_server(tmp_path, env) as url:
        added = run("keys", "add", "analyst", "--scope", "write", cwd=tmp_path, **env)
        key = added.stdout.split()[-1]
        listed = run("keys", "list", cwd=tmp_path, **env)
        accepted = httpx.post(
            f"{url}/sessions",
            json={"methodology": "mec", "concept_id": "c", "concept_name": "Coffee"},
            headers={"Authorization": f"Bearer {key}"},
        )
        removed = run("keys", "remove", "analyst", cwd=tmp_path, **env)
        refused = httpx.get(f"{url}/sessions", headers={"Authorization": f"Bearer {key}"})
        still = httpx.get(
            f"{url}/sessions", headers={"Authorization": f"Bearer {first.stdout.split()[-1]}"}
        )

    assert (first.returncode, added.returncode, listed.returncode, removed.returncode) == (0,) * 4
    assert "analyst  read, write" in listed.stdout
    assert key not in listed.stdout
    assert (accepted.status_code, refused.status_code, still.status_code) == (201, 401, 200)


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (None, "there is no such file"),
        ('[[key]]\nname = "x"\nscopes = ["owner"]\n', "key 1 ('x'): scopes.0"),
        ("[[key]\n", "it is not valid TOML"),
    ],
)
def test_serve_refuses_a_bad_key_file_in_one_line(
    tmp_path: Path, content: str | None, reason: str
) -> None:
    key_file = tmp_path / "keys.toml"
    if content is not None:
        key_file.write_text(content)

    result = run(
        "serve",
        "--port",
        str(free_port()),
        cwd=tmp_path,
        DATABASE_PATH=str(tmp_path / "s.db"),
        DATABASE_URL="",
        API_KEYS=str(key_file),
    )

    assert result.returncode == 1
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"interview-system: cannot use the key file {key_file} (API_KEYS): ")
    assert reason in line
    assert not (tmp_path / "s.db").exists()


def test_uvicorn_on_its_own_refuses_to_start_with_a_bad_key_file(tmp_path: Path) -> None:
    key_file = tmp_path / "keys.toml"
    key_file.write_text("[[key]\n")

    result = subprocess.run(
        [sys.executable, "-m", "uvicorn", "src.main:app", "--port", str(free_port())],
        env={
            **os.environ,
            "DATABASE_PATH": str(tmp_path / "s.db"),
            "DATABASE_URL": "",
            "API_KEYS": str(key_file),
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode != 0
    assert f"cannot use the key file {key_file} (API_KEYS): it is not valid TOML" in result.stderr
    assert "Application startup failed" in result.stderr


def test_uvicorn_on_its_own_still_refuses_a_bad_setting(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "uvicorn", "src.main:app", "--port", str(free_port())],
        env={**os.environ, "DATABASE_PATH": str(tmp_path / "s.db"), "API_KEY": "short"},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )

    assert "must be at least 16 characters" in result.stderr
    assert "Application startup failed" in result.stderr
    assert not (tmp_path / "s.db").exists()
