"""Reading a Server-Sent Events stream in tests, line by line as a browser does."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx


@dataclass(frozen=True)
class Message:
    """One SSE message, or a comment (a heartbeat) when `comment` is set."""

    id: str | None = None
    event: str | None = None
    data: str = ""
    comment: str | None = None

    def json(self) -> Any:
        return json.loads(self.data)


async def messages(response: httpx.Response) -> AsyncIterator[Message]:
    fields: dict[str, str] = {}
    async for line in response.aiter_lines():
        if line == "":
            if fields:
                yield Message(fields.get("id"), fields.get("event"), fields.get("data", ""))
            fields = {}
        elif line.startswith(":"):
            yield Message(comment=line[1:].strip())
        else:
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            fields[name] = f"{fields[name]}\n{value}" if name in fields else value


async def next_events(
    stream: AsyncIterator[Message], count: int, seconds: float = 20
) -> list[Message]:
    """The next `count` messages that are events (heartbeats skipped)."""

    async def collect() -> list[Message]:
        found: list[Message] = []
        async for message in stream:
            if message.comment is None:
                found.append(message)
                if len(found) == count:
                    break
        return found

    return await asyncio.wait_for(collect(), seconds)
