"""Small file systems the fault tests can fill or make read-only."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest


class Tmpfs:
    """A tmpfs mounted for one test: it can run out of space or turn read-only."""

    def __init__(self, mount_point: Path) -> None:
        self.path = mount_point

    def make_read_only(self) -> None:
        subprocess.run(["mount", "-o", "remount,ro", str(self.path)], check=True)


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Tmpfs]:
    """An 8 MiB tmpfs; skips where mounting is not allowed, unless REQUIRE_FAULT_TESTS=1."""
    mount_point = tmp_path / "tmpfs"
    mount_point.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        reason = f"cannot mount a tmpfs here ({mounted.stderr.strip() or 'not root'})"
        if os.environ.get("REQUIRE_FAULT_TESTS") == "1":
            pytest.fail(f"{reason}, and REQUIRE_FAULT_TESTS=1")
        pytest.skip(reason)
    try:
        yield Tmpfs(mount_point)
    finally:
        subprocess.run(["umount", str(mount_point)], check=True)
