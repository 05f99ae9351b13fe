"""The API as `interview-system serve` runs it, plus a framework floor route.

    python -m bench.server --port P

The floor answers a fixed session body from a route that touches no
database: the cost of the framework and server alone, in the same process.
"""

from __future__ import annotations

import argparse

from fastapi import Response

from src.api.app import create_app
from src.api.server import serve
from src.core.config import Settings
from src.core.logging import configure_logging
from src.domain.models.session import Session

FLOOR_BODY = Session.model_validate(
    {
        "id": "00000000-0000-0000-0000-000000000000",
        "methodology": "mec",
        "concept_id": "concept-bench",
        "concept_name": "Bench concept",
    }
).model_dump_json()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    settings = Settings(port=parser.parse_args().port)
    configure_logging()
    app = create_app(settings)

    @app.get("/bench/floor", include_in_schema=False)
    async def floor() -> Response:
        return Response(FLOOR_BODY, media_type="application/json", headers={"ETag": '"1"'})

    serve(app, settings)


if __name__ == "__main__":
    main()
