"""A streamed answer steps aside for other requests, however fast its client reads."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from src.api.streaming import sharing_the_loop


async def test_a_long_stream_lets_other_tasks_run_before_it_ends() -> None:
    async def export() -> AsyncIterator[bytes]:
        for _ in range(1000):  # nothing here ever waits: a client reading at once
            yield b"x" * 1024

    sent: list[bytes] = []

    async def health() -> int:
        return len(sent)

    answered = asyncio.ensure_future(health())
    async for chunk in sharing_the_loop(export()):
        sent.append(chunk)

    assert len(sent) == 1000
    assert await answered <= 32
