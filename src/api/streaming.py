"""Streamed answers that share the event loop with every other request."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

__all__ = ["sharing_the_loop"]

_BYTES_BETWEEN_TURNS = 32 * 1024


async def sharing_the_loop(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """`chunks`, stepping aside for the other requests after every 32 KiB.

    A client that reads as fast as the server writes never makes a send wait, so
    without this a large export would hold the event loop until its last byte.
    """
    since_turn = 0
    async for chunk in chunks:
        yield chunk
        since_turn += len(chunk)
        if since_turn >= _BYTES_BETWEEN_TURNS:
            since_turn = 0
            await asyncio.sleep(0)
