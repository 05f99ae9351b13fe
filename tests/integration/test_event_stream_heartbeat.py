"""An idle event stream sends heartbeats; the console's cookie and a read key open it."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
import uvicorn
from pydantic import SecretStr

from src.api.console.paths import KEY_COOKIE
from src.core.config import Settings
from src.core.keys import Scope, add_key
from src.main import create_app
from tests.servers import free_port
from tests.sse import messages

pytestmark = pytest.mark.sqlite

API_KEY = "k" * 24
HEARTBEAT = 0.2


@asynccontextmanager
async def serving(settings: Settings, heartbeat: float) -> AsyncIterator[str]:
    """The app under uvicorn in this process (so the heartbeat can be shortened)."""
    port = free_port()
    app = create_app(settings, event_heartbeat_seconds=heartbeat)
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    task = asyncio.create_task(server.serve())
    try:
        async with asyncio.timeout(20):
            while not server.started:  # noqa: ASYNC110 (uvicorn offers no event to wait for)
                await asyncio.sleep(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 20)


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
    async with serving(settings, HEARTBEAT) as url:
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
    async with serving(settings, HEARTBEAT) as url:
        async with httpx.AsyncClient(base_url=url) as client:
            assert (await client.get("/events")).status_code == 401
        assert await first_lines(url, {"Cookie": f"{KEY_COOKIE}={cookie}"}, 2 * HEARTBEAT)
        assert await first_lines(url, {"Authorization": f"Bearer {read_key}"}, 2 * HEARTBEAT)
