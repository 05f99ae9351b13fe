"""Dependencies the routes declare."""

from __future__ import annotations

from typing import Annotated, Any, cast

from fastapi import Depends, Header, Path, Request

from src.core.config import Settings
from src.persistence.repositories.protocol import SessionRepositoryProtocol

__all__ = ["IfMatchHeader", "RepositoryDep", "SessionIdPath", "SettingsDep"]


async def get_repository(request: Request) -> SessionRepositoryProtocol:
    """The repository the app opened for its lifetime."""
    # async, although it awaits nothing: FastAPI runs a plain def dependency
    # in a worker thread, one thread hop per request for nothing.
    return cast(SessionRepositoryProtocol, request.state.repository)


async def get_app_settings(request: Request) -> Settings:
    """The settings the app started with."""
    return cast(Settings, request.state.settings)


SettingsDep = Annotated[Settings, Depends(get_app_settings)]
RepositoryDep = Annotated[SessionRepositoryProtocol, Depends(get_repository)]
SessionIdPath = Annotated[str, Path(min_length=1, max_length=128, description="Session id")]
# Published so that clients and schema-driven tools know the form; anything
# else matches no version, so a write with it gets 412 (src.api.preconditions).
_ENTITY_TAG_LIST = (
    r'^[ \t]*(\*|(W/)?"[\x21\x23-\x7E]*"([ \t]*,[ \t]*(W/)?"[\x21\x23-\x7E]*")*)[ \t]*$'
)


def _entity_tag_list_schema(schema: dict[str, Any]) -> None:
    # An absent header is the optional case; "null" is not a value it can hold.
    schema.pop("anyOf", None)
    schema.update(type="string", pattern=_ENTITY_TAG_LIST)


async def _if_match(
    request: Request,
    if_match: Annotated[
        str | None,
        Header(
            description='The version the write expects, as an entity tag: "3"',
            json_schema_extra=_entity_tag_list_schema,
        ),
    ] = None,
) -> str | None:
    # Several If-Match lines are one comma-separated list (RFC 9110 5.3);
    # the parameter above, which declares the header, holds only the first.
    lines = request.headers.getlist("if-match")
    return ", ".join(lines) if lines else None


IfMatchHeader = Annotated[str | None, Depends(_if_match)]
