"""Where the console lives and what its cookie is called, for the access rules and the pages.

Kept apart from the routes, which import the API-key middleware: the rule
table needs these names without importing the pages.
"""

from __future__ import annotations

from pathlib import Path

__all__ = [
    "ASSETS_DIRECTORY",
    "ASSETS_PATH",
    "ASSET_PATHS",
    "HOME_PATH",
    "KEY_COOKIE",
    "KEY_FORM_PATH",
    "LOGOUT_PATH",
    "PAGE_PATHS",
    "SEARCH_PAGE_PATH",
    "SESSION_PAGE_PATH",
]

HOME_PATH = "/console"
SESSION_PAGE_PATH = "/console/sessions/{}"
SEARCH_PAGE_PATH = "/console/search"
KEY_FORM_PATH = "/console/key"
LOGOUT_PATH = "/console/logout"
ASSETS_PATH = "/console/static"
ASSETS_DIRECTORY = Path(__file__).parent / "static"

# The pages that show what the store holds: they need the `read` scope.
PAGE_PATHS = frozenset({HOME_PATH, SESSION_PAGE_PATH, SEARCH_PAGE_PATH})
# The stylesheet and script: open, because the key form uses them too.
ASSET_PATHS = frozenset(f"{ASSETS_PATH}/{asset.name}" for asset in ASSETS_DIRECTORY.iterdir())

KEY_COOKIE = "console_key"
