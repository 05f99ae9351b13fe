"""Liveness of the server and its database."""

from __future__ import annotations

from fastapi import APIRouter

from src.api.deps import RepositoryDep
from src.api.errors import problem_responses

router = APIRouter(tags=["health"])


@router.get("/health", responses=problem_responses(400, 413, 415, 503))
async def health(repository: RepositoryDep) -> dict[str, str]:
    """Report whether the database can be read."""
    await repository.ping()
    return {"status": "ok", "database": "ok"}
