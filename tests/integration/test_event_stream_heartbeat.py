"""An idle event stream sends heartbeats; the console's cookie and a read key open it."""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from src.api.console.paths import KEY_COOKIE
from src.core.config import Settings
from src.core.keys import Scope, add_key
from tests.servers import serving_in_process
from tests.sse import messages

pytestmark = pytest.mark.sqlite

API_KEY = "k" * 24
HEARTBEAT = 0.2


async def first_lines(url: str, headers: dict[str, str], seconds: float) -> list[str]:
    """What the stream says within `seconds`: each message's comment or event."""
    said: list[str] = []
    async with (
        httpx.AsyncClient(base_url=url, timeout=httpx.Timeout(10, read=None)) as client,
        client.stream("GET", "/events", headers=headers) as response,
    ):
        assert response.status_code == 200, await response.aread()

        async def read() -> None:
            async for message in messages(response):
                said.append(message.comment if message.comment is not None else "event")

        try:
            await asyncio.wait_for(read(), seconds)
        except TimeoutError:
            pass
    return said


async def test_an_idle_stream_sends_heartbeat_comments(db_path: Path) -> None:
    settings = Settings(database_path=db_path, database_url=None)
    async with serving_in_process(settings, event_heartbeat_seconds=HEARTBEAT) as url:
        said = await first_lines(url, {}, 10 * HEARTBEAT)

    assert len(said) >= 4
    assert all(line != "event" for line in said), said


async def test_the_console_cookie_and_a_read_key_open_the_stream(
    db_path: Path, tmp_path: Path
) -> None:
    key_file = tmp_path / "keys.toml"
    read_key = add_key(key_file, "watcher", [Scope.READ])
    settings = Settings(
        database_path=db_path,
        database_url=None,
        api_key=SecretStr(API_KEY),
        api_keys=key_file,
    )
    cookie = base64.urlsafe_b64encode(API_KEY.encode()).decode()
    async with serving_in_process(settings, event_heartbeat_seconds=HEARTBEAT) as url:
        async with httpx.AsyncClient(base_url=url) as client:
            assert (await client.get("/events")).status_code == 401
        assert await first_lines(url, {"Cookie": f"{KEY_COOKIE}={cookie}"}, 2 * HEARTBEAT)
        assert await first_lines(url, {"Authorization": f"Bearer {read_key}"}, 2 * HEARTBEAT)
