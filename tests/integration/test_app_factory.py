"""The app objects of CONTRACT.md section 1: nothing opens at import, settings at start."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI

from src.core import config
from src.main import app
from tests.http import serve_in_process


@pytest.fixture
def fresh_settings() -> Iterator[None]:
    config.get_settings.cache_clear()
    yield
    config.get_settings.cache_clear()


def test_importing_the_app_opens_no_database(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[2]
    script = "import fastapi, src.main; assert isinstance(src.main.app, fastapi.FastAPI)"

    subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(root)},
        check=True,
        timeout=60,
    )

    assert list(tmp_path.iterdir()) == []
    assert isinstance(app, FastAPI)


def test_module_level_settings_are_settings(fresh_settings: None) -> None:
    from src.core.config import settings

    assert isinstance(settings, config.Settings)


async def test_create_app_without_settings_reads_the_environment_at_start(
    fresh_settings: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    db_path = tmp_path / "from-env" / "sessions.db"
    monkeypatch.setenv("DATABASE_PATH", str(db_path))
    monkeypatch.delenv("DATABASE_URL", raising=False)

    async with serve_in_process() as client:
        response = await client.post(
            "/sessions", json={"methodology": "mec", "concept_id": "c", "concept_name": "n"}
        )

    assert response.status_code == 201
    assert db_path.exists()
