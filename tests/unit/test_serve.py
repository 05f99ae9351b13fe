"""What `serve` sets up in the process before uvicorn takes over."""

from __future__ import annotations

import gc
import sys
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI

from src.api.server import serve
from src.core.config import Settings


def test_serve_freezes_what_the_app_built_before_it_answers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: dict[str, Any] = {}

    def run(app: FastAPI, **options: Any) -> None:
        seen["frozen"] = gc.get_freeze_count()
        seen["options"] = options

    monkeypatch.setattr(uvicorn, "run", run)
    interval = sys.getswitchinterval()
    gc.unfreeze()
    try:
        serve(FastAPI(), Settings(port=8123))
    finally:
        gc.unfreeze()
        sys.setswitchinterval(interval)

    assert seen["frozen"] > 0
    assert seen["options"]["port"] == 8123
