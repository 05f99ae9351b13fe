"""A typed Python client of the session store's HTTP API, async and sync, over httpx.

    async with AsyncClient("http://127.0.0.1:8000", api_key=key) as client:
        session = await client.create_session(
            methodology="mec", concept_id="coffee-01", concept_name="Coffee"
        )

Failures raise the store's own errors (`src.core.errors`): SessionNotFoundError
for a 404, StaleSessionError (with `expected_version` and `actual_version`)
for a 412, and so on; a refusal the store has no error for raises ApiError
(InsufficientScopeError, a subclass, when the key lacks the route's scope).
"""

from src.client.async_client import AsyncClient
from src.client.calls import ResumeContext, TurnRecorded
from src.client.errors import ApiError, InsufficientScopeError
from src.client.sync_client import Client

__all__ = [
    "ApiError",
    "AsyncClient",
    "Client",
    "InsufficientScopeError",
    "ResumeContext",
    "TurnRecorded",
]
