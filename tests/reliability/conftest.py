"""Small file systems the fault tests can fill or make read-only."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

# CI sets this: there, a fault test that cannot build its fault is a failure.
REQUIRE_FAULT_TESTS = os.environ.get("REQUIRE_FAULT_TESTS") == "1"


def cannot_run(reason: str) -> None:
    """Skip the test, or fail it where the fault tests are required."""
    if REQUIRE_FAULT_TESTS:
        pytest.fail(f"{reason}, and REQUIRE_FAULT_TESTS=1")
    pytest.skip(reason)


class Tmpfs:
    """A tmpfs mounted for one test: it can run out of space or turn read-only."""

    def __init__(self, mount_point: Path) -> None:
        self.path = mount_point

    def make_read_only(self) -> None:
        subprocess.run(["mount", "-o", "remount,ro", str(self.path)], check=True)


@contextmanager
def mounted_tmpfs(mount_point: Path, *, owner: int | None = None) -> Iterator[Tmpfs]:
    """An 8 MiB tmpfs at mount_point, its root owned by owner (a uid) if given."""
    options = "size=8m" if owner is None else f"size=8m,mode=0700,uid={owner}"
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        cannot_run(f"cannot mount a tmpfs here ({mounted.stderr.strip() or 'not root'})")
    try:
        yield Tmpfs(mount_point)
    finally:
        subprocess.run(["umount", str(mount_point)], check=True)


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Tmpfs]:
    """An 8 MiB tmpfs; skips where mounting is not allowed, unless REQUIRE_FAULT_TESTS=1."""
    mount_point = tmp_path / "tmpfs"
    mount_point.mkdir()
    with mounted_tmpfs(mount_point) as mounted:
        yield mounted
