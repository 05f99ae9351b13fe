"""A burst of turns over HTTP that runs until the server under it is killed."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from tests.builders import NEW_SESSION_BODY

TURNS_PER_SESSION = 5


async def turns_until_killed(
    client: httpx.AsyncClient,
    acknowledged: dict[str, int],
    turn_body: Callable[[int], dict[str, Any]],
) -> None:
    """Create sessions and record turns in them until the server stops answering.

    `acknowledged` maps each session to the last turn the server answered 201 for.
    """
    try:
        while True:
            created = await client.post("/sessions", json=NEW_SESSION_BODY)
            assert created.status_code == 201, created.text
            session_id = created.json()["id"]
            acknowledged[session_id] = 0
            for number in range(1, TURNS_PER_SESSION + 1):
                response = await client.post(
                    f"/sessions/{session_id}/turns", json=turn_body(number)
                )
                assert response.status_code == 201, response.text
                acknowledged[session_id] = number
    except httpx.TransportError:
        return
