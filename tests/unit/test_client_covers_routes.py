"""Every operation in the API's OpenAPI document has a method in both Python clients."""

from __future__ import annotations

from src.client import AsyncClient, Client
from src.main import create_app

# The client method behind each operation; a new route must be added here and to the clients.
METHOD_OF_OPERATION = {
    ("POST", "/sessions"): "create_session",
    ("GET", "/sessions"): "list_sessions",
    ("GET", "/sessions/{session_id}"): "get_session",
    ("PATCH", "/sessions/{session_id}"): "patch_session",
    ("DELETE", "/sessions/{session_id}"): "delete_session",
    ("PUT", "/sessions/{session_id}/state"): "update_state",
    ("PATCH", "/sessions/{session_id}/state"): "patch_state",
    ("POST", "/sessions/{session_id}/pause"): "pause",
    ("POST", "/sessions/{session_id}/resume"): "resume",
    ("GET", "/sessions/{session_id}/resume"): "resume_context",
    ("POST", "/sessions/{session_id}/complete"): "complete",
    ("POST", "/sessions/{session_id}/abandon"): "abandon",
    ("POST", "/sessions/{session_id}/utterances"): "append_utterance",
    ("GET", "/sessions/{session_id}/utterances"): "list_utterances",
    ("POST", "/sessions/{session_id}/turns"): "record_turn",
    ("GET", "/sessions/{session_id}/turns"): "list_turns",
    ("GET", "/sessions/{session_id}/export"): "export_session",
    ("GET", "/sessions/{session_id}/versions"): "list_versions",
    ("GET", "/sessions/{session_id}/versions/{version}"): "get_version",
    ("POST", "/sessions/{session_id}/fork"): "fork_session",
    ("GET", "/studies/{study_id}"): "get_study",
    ("GET", "/health"): "health",
    ("GET", "/search"): "search",
    ("GET", "/audit"): "list_audit",
    ("GET", "/events"): "events",
    ("DELETE", "/participants/{participant_id}"): "erase_participant",
    ("GET", "/sessions/{session_id}/graph"): "get_graph",
    ("POST", "/sessions/{session_id}/graph"): "change_graph",
    ("GET", "/sessions/{session_id}/graph/similar"): "similar_nodes",
    ("GET", "/studies/{study_id}/export"): "export_study",
}


def test_every_operation_of_the_api_has_a_client_method() -> None:
    operations = {
        (method.upper(), path)
        for path, methods in create_app().openapi()["paths"].items()
        for method in methods
    }

    assert operations == set(METHOD_OF_OPERATION)
    for method in METHOD_OF_OPERATION.values():
        assert callable(getattr(AsyncClient, method, None)), method
        assert callable(getattr(Client, method, None)), method
