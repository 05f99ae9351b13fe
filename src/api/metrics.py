"""`GET /metrics`: the Prometheus text format, behind the API key when one is set."""

from __future__ import annotations

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

__all__ = ["router"]

router = APIRouter()


# Out of the OpenAPI document: it is for scrapers, not for API clients.
@router.get("/metrics", include_in_schema=False)
async def metrics() -> Response:
    """Every metric of this process, in the Prometheus text format."""
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
