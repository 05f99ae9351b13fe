"""`GET /metrics`: the Prometheus text format, behind the API key when one is set."""

from __future__ import annotations

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from src.api.deps import RepositoryDep
from src.core.errors import StorageError
from src.core.metrics import observe_database_error, observe_sessions_by_status

__all__ = ["router"]

router = APIRouter()


# Out of the OpenAPI document: it is for scrapers, not for API clients.
@router.get("/metrics", include_in_schema=False)
async def metrics(repository: RepositoryDep) -> Response:
    """Every metric of this process, in the Prometheus text format."""
    try:
        counts = (await repository.count_by_status()).items()
    except StorageError as error:
        # The other metrics matter most when the database cannot be read.
        observe_database_error(error)
        counts = None
    observe_sessions_by_status(counts)
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
