"""Every error the store can raise has its HTTP status."""

from __future__ import annotations

import src.core.errors as errors_module
from src.api.errors import _STATUS_BY_ERROR
from src.core.errors import SessionError


def test_every_domain_error_maps_to_a_status() -> None:
    kinds = [getattr(errors_module, name) for name in errors_module.__all__]

    unmapped = [
        kind.__name__
        for kind in kinds
        if issubclass(kind, SessionError)
        and kind is not SessionError
        and not any(issubclass(kind, mapped) for mapped, _ in _STATUS_BY_ERROR)
    ]

    assert unmapped == []
