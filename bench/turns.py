"""An interview turn as the benchmark sends it: two utterances, a 4 KiB state patch, a record."""

from __future__ import annotations

from typing import Any

from src.domain.models.turn import TurnRecordData
from src.domain.models.utterance import NewUtterance

PATCH_BYTES = 4 * 1024


def utterances(number: int) -> list[NewUtterance]:
    return [
        NewUtterance(
            turn_number=number, speaker="interviewer", text=f"Why does that matter? ({number})"
        ),
        NewUtterance(
            turn_number=number,
            speaker="respondent",
            text="Because it is what I grew up with, and it reminds me of home.",
            metadata={"asr_confidence": 0.93},
        ),
    ]


def state_patch(number: int) -> dict[str, Any]:
    """About PATCH_BYTES of compact JSON, changing two top-level keys of state.data."""
    entry = {"turn": number, "node_id": f"n{number}", "label": "x" * 40, "strategy": "ladder"}
    history = [entry] * (PATCH_BYTES // 100)
    return {
        "turn_count": number,
        "data": {"mode": "focused" if number % 2 else "exploratory", "focus_history": history},
    }


RECORD = TurnRecordData.model_validate(
    {
        "strategy": "ladder",
        "scores": {"depth": 0.4, "saturation": 0.2, "novelty": 0.7, "richness": 0.5},
        "signals": {"model": "haiku", "extraction_latency_ms": 812.0, "errors": []},
        "usage": {
            "model": "sonnet",
            "input_tokens": 1200,
            "output_tokens": 180,
            "cost_usd": 0.0031,
            "latency_ms": 950.0,
        },
    }
)
