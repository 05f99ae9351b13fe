"""The file name an export downloads as: the concept, the participant (if any), the day the
session began, its id."""

from __future__ import annotations

import re
from datetime import datetime

import httpx
import pytest

_FILE_NAME = re.compile(r'attachment; filename="([^"]+)"')


async def _download_name(
    client: httpx.AsyncClient, concept_id: str, export_format: str, **more: str
) -> tuple[str, dict[str, str]]:
    created = await client.post(
        "/sessions",
        json={"methodology": "mec", "concept_id": concept_id, "concept_name": "Coffee", **more},
    )
    assert created.status_code == 201
    session = created.json()
    answer = await client.get(f"/sessions/{session['id']}/export", params={"format": export_format})
    assert answer.status_code == 200
    match = _FILE_NAME.fullmatch(answer.headers["content-disposition"])
    assert match is not None, answer.headers["content-disposition"]
    return match[1], session


@pytest.mark.parametrize(
    ("export_format", "extension"), [("csv", "csv"), ("markdown", "md"), ("json", "json")]
)
async def test_the_file_name_carries_the_concept_the_day_and_the_id(
    client: httpx.AsyncClient, export_format: str, extension: str
) -> None:
    name, session = await _download_name(client, "coffee-01", export_format)

    day = datetime.fromisoformat(session["created_at"]).date().isoformat()
    assert name == f"coffee-01_{day}_{session['id']}.{extension}"


@pytest.mark.parametrize(
    "concept_id", ["café au lait", "../../etc/passwd", '"quoted";x=1', ".hidden", "a" * 128]
)
async def test_a_concept_id_that_is_unsafe_in_a_file_name_is_made_safe(
    client: httpx.AsyncClient, concept_id: str
) -> None:
    name, session = await _download_name(client, concept_id, "csv")

    assert re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9._-]*", name), name
    assert len(name.encode()) <= 200
    assert name.endswith(f"_{session['id']}.csv")


async def test_the_file_name_carries_the_participant_when_there_is_one(
    client: httpx.AsyncClient,
) -> None:
    name, session = await _download_name(client, "coffee-01", "csv", participant_id="p 017/x")

    day = datetime.fromisoformat(session["created_at"]).date().isoformat()
    assert name == f"coffee-01_p_017_x_{day}_{session['id']}.csv"
