"""The console with an API key: the key form, its cookie, and what the cookie may not do."""

from __future__ import annotations

import base64
import html
import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager
from pydantic import SecretStr

from src.api.console.paths import KEY_COOKIE
from src.core.config import Settings
from src.core.keys import Scope, add_key, remove_key
from src.main import create_app

pytestmark = pytest.mark.sqlite

API_KEY = "k" * 24
NEW_SESSION = {"methodology": "mec", "concept_id": "coffee-01", "concept_name": "Coffee"}
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    return tmp_path / "keys.toml"


@pytest.fixture
async def app(db_path: Path, key_file: Path) -> AsyncIterator[LifespanManager]:
    add_key(key_file, "first-key", [Scope.READ])  # the file exists from the start
    settings = Settings(
        database_path=db_path, database_url=None, api_key=SecretStr(API_KEY), api_keys=key_file
    )
    async with LifespanManager(create_app(settings)) as manager:
        yield manager


def client_of(app: LifespanManager, base_url: str = "http://testserver") -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app.app), base_url=base_url)


@pytest.fixture
async def browser(app: LifespanManager) -> AsyncIterator[httpx.AsyncClient]:
    """A client that keeps cookies, as a browser does, and sends no Authorization header."""
    async with client_of(app) as http:
        yield http


@pytest.fixture
async def session_id(app: LifespanManager) -> str:
    async with client_of(app) as http:
        created = await http.post(
            "/sessions", json=NEW_SESSION, headers={"Authorization": f"Bearer {API_KEY}"}
        )
    assert created.status_code == 201
    created_id: str = created.json()["id"]
    return created_id


def key_cookie(key: str) -> dict[str, str]:
    return {"Cookie": f"{KEY_COOKIE}={base64.urlsafe_b64encode(key.encode()).decode()}"}


async def test_a_page_without_a_key_leads_to_the_key_form_and_back(
    browser: httpx.AsyncClient, session_id: str
) -> None:
    asked = f"/console/sessions/{session_id}"

    refused = await browser.get(asked)
    form = await browser.get(refused.headers["location"])
    entered = await browser.post(
        "/console/key", content=f"key={API_KEY}&next={asked.replace('/', '%2F')}", headers=FORM
    )
    page = await browser.get(entered.headers["location"])

    assert refused.status_code == 303
    assert refused.headers["location"] == f"/console/key?next=%2Fconsole%2Fsessions%2F{session_id}"
    assert form.status_code == 200
    assert '<label for="key">API key</label>' in form.text
    assert '<input id="key" name="key" type="password"' in form.text
    assert f'<input type="hidden" name="next" value="{asked}">' in form.text
    assert (entered.status_code, entered.headers["location"]) == (303, asked)
    assert page.status_code == 200
    assert f"<code>{session_id}</code>" in page.text
    assert "Forget key" in page.text


async def test_the_cookie_is_httponly_samesite_strict_and_secure_over_https(
    app: LifespanManager,
) -> None:
    for base_url, secure in [("http://testserver", False), ("https://testserver", True)]:
        async with client_of(app, base_url) as http:
            entered = await http.post("/console/key", content=f"key={API_KEY}", headers=FORM)
        cookie = entered.headers["set-cookie"]
        attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")[1:]}

        assert entered.status_code == 303
        assert cookie.startswith(f"{KEY_COOKIE}=")
        assert "httponly" in attributes
        assert "samesite=strict" in cookie.lower()
        assert "path=/" in cookie.lower()
        assert ("secure" in attributes) is secure, base_url


async def test_a_named_read_key_from_the_key_file_opens_the_console(
    browser: httpx.AsyncClient, key_file: Path, session_id: str
) -> None:
    read_key = add_key(key_file, "analyst", [Scope.READ])

    entered = await browser.post("/console/key", content=f"key={read_key}", headers=FORM)
    page = await browser.get("/console")

    assert entered.status_code == 303
    assert page.status_code == 200
    assert session_id in page.text


async def test_a_wrong_key_is_refused_on_the_form_and_sets_no_cookie(
    browser: httpx.AsyncClient,
) -> None:
    for body in ("key=wrong-key-wrong-key", "key=", "", f"key={'x' * 2000}"):
        refused = await browser.post("/console/key", content=body, headers=FORM)

        assert refused.status_code == 401, body
        assert "set-cookie" not in refused.headers
        assert "That is not a key this server accepts." in refused.text
        assert 'role="alert"' in refused.text
    assert (await browser.get("/console")).status_code == 303


async def test_a_key_sent_from_another_site_is_not_kept(browser: httpx.AsyncClient) -> None:
    refused = await browser.post(
        "/console/key",
        content=f"key={API_KEY}",
        headers={**FORM, "Sec-Fetch-Site": "cross-site"},
    )

    assert refused.status_code == 403
    assert "set-cookie" not in refused.headers


@pytest.mark.parametrize(
    "next_page", ["https://elsewhere.example/", "//elsewhere.example/", "/sessions", "/consolex"]
)
async def test_the_key_form_leads_only_to_console_pages(
    browser: httpx.AsyncClient, next_page: str
) -> None:
    entered = await browser.post(
        "/console/key", data={"key": API_KEY, "next": next_page}, headers=FORM
    )

    assert (entered.status_code, entered.headers["location"]) == (303, "/console")


async def test_the_cookie_opens_every_link_the_console_shows(
    app: LifespanManager, browser: httpx.AsyncClient
) -> None:
    bearer = {"Authorization": f"Bearer {API_KEY}"}
    async with client_of(app) as http:
        created = await http.post(
            "/sessions", json={**NEW_SESSION, "study_id": "study-a"}, headers=bearer
        )
        session_id = created.json()["id"]
        said = {"turn_number": 1, "speaker": "respondent", "text": "Hello coffee"}
        await http.post(f"/sessions/{session_id}/utterances", json=said, headers=bearer)
    cookie = key_cookie(API_KEY)
    pages = ["/console", f"/console/sessions/{session_id}", "/console/search?q=coffee"]
    links: set[str] = set()
    for page in pages:
        shown = await browser.get(page, headers=cookie)
        assert shown.status_code == 200, page
        links |= {
            html.unescape(href)
            for href in re.findall(r'href="(/[^"]*)"', shown.text)
            if not href.startswith("/console/static/")
        }

    assert "/studies/study-a/export?format=qdpx" in links
    for link in sorted(links - {"/docs"}):
        assert (await browser.get(link, headers=cookie)).status_code == 200, link
        assert (await browser.head(link, headers=cookie)).status_code == 200, link


async def test_a_cookie_does_not_authorise_the_json_api(
    app: LifespanManager, browser: httpx.AsyncClient, session_id: str
) -> None:
    cookie = key_cookie(API_KEY)
    state = {**NEW_SESSION, "turn_count": 1}
    said = {"turn_number": 1, "speaker": "respondent", "text": "Hello"}

    writes = [
        await browser.post("/sessions", json=NEW_SESSION, headers=cookie),
        await browser.put(f"/sessions/{session_id}/state", json=state, headers=cookie),
        await browser.post(f"/sessions/{session_id}/utterances", json=said, headers=cookie),
        await browser.post(f"/sessions/{session_id}/complete", headers=cookie),
        await browser.delete(f"/sessions/{session_id}", headers=cookie),
        # Not even a write to a console page's own path.
        await browser.post(f"/console/sessions/{session_id}", headers=cookie),
    ]
    reads = [
        await browser.get("/sessions", headers=cookie),
        await browser.get(f"/sessions/{session_id}", headers=cookie),
        await browser.get(f"/sessions/{session_id}/utterances", headers=cookie),
        await browser.get("/metrics", headers=cookie),
    ]

    assert [response.status_code for response in writes + reads] == [401] * 10
    async with client_of(app) as http:
        still = await http.get(
            f"/sessions/{session_id}", headers={"Authorization": f"Bearer {API_KEY}"}
        )
    assert (still.status_code, still.json()["status"], still.json()["version"]) == (
        200,
        "active",
        1,
    )


@pytest.mark.parametrize(
    "cookie",
    [
        f"{KEY_COOKIE}=bm90LXRoZS1rZXk=",  # base64 of a wrong key
        f"{KEY_COOKIE}=%%%",
        f"{KEY_COOKIE}=",
        # Two cookies of that name: neither is taken for the one.
        f"{KEY_COOKIE}={base64.urlsafe_b64encode(API_KEY.encode()).decode()}; {KEY_COOKIE}=eA==",
    ],
)
async def test_a_bad_cookie_is_no_key(browser: httpx.AsyncClient, cookie: str) -> None:
    page = await browser.get("/console", headers={"Cookie": cookie})
    export = await browser.get("/sessions/s-1/export", headers={"Cookie": cookie})

    assert page.status_code == 303
    assert export.status_code == 401


async def test_a_key_removed_from_the_file_no_longer_opens_the_console(
    browser: httpx.AsyncClient, key_file: Path
) -> None:
    read_key = add_key(key_file, "leaving", [Scope.READ])
    assert (await browser.post("/console/key", content=f"key={read_key}", headers=FORM)).is_redirect
    assert (await browser.get("/console")).status_code == 200

    remove_key(key_file, "leaving")

    assert (await browser.get("/console")).status_code == 303


async def test_forget_key_clears_the_cookie(browser: httpx.AsyncClient) -> None:
    await browser.post("/console/key", content=f"key={API_KEY}", headers=FORM)
    assert (await browser.get("/console")).status_code == 200

    forgotten = await browser.post("/console/logout")

    assert forgotten.status_code == 303
    assert f'{KEY_COOKIE}=""' in forgotten.headers["set-cookie"]
    assert "max-age=0" in forgotten.headers["set-cookie"].lower()
    assert (await browser.get("/console")).status_code == 303


async def test_the_key_form_and_the_stylesheet_need_no_key(browser: httpx.AsyncClient) -> None:
    assert (await browser.get("/console/key")).status_code == 200
    assert (await browser.get("/console/static/console.css")).status_code == 200
    assert (await browser.get("/console/static/live.js")).status_code == 200
    assert (await browser.get("/console/static/other.css")).status_code == 401


async def test_a_form_body_is_still_refused_by_the_json_api(browser: httpx.AsyncClient) -> None:
    refused = await browser.post(
        "/sessions",
        content="methodology=mec",
        headers={**FORM, "Authorization": f"Bearer {API_KEY}"},
    )

    assert refused.status_code == 415


async def test_without_an_api_key_the_key_form_leads_straight_to_the_console(
    db_path: Path,
) -> None:
    settings = Settings(database_path=db_path, database_url=None)
    async with (
        LifespanManager(create_app(settings)) as manager,
        client_of(manager) as http,
    ):
        form = await http.get("/console/key", params={"next": "/console?status=paused"})
        page = await http.get("/console")

    assert (form.status_code, form.headers["location"]) == (303, "/console?status=paused")
    assert page.status_code == 200
    assert "Forget key" not in page.text
