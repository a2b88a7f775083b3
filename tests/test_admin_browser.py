"""The back office (/admin) of a rendered project in a real browser, as an operator uses it.

The `jwt-multi_tenant` variant of tests/test_docs_browser.py (features admin and audit) serves
both modules: one render, one `uv sync`, one uvicorn. Its docs reader (a member) owns the items;
the superuser comes from FIRST_SUPERUSER_EMAIL. Every request to another origin is blocked and
recorded (tests/browser.py); the cross-site test serves its own page from a second loopback port
(another origin, the same site: the SameSite cookie is sent, so the Origin check must refuse).
"""

from __future__ import annotations

import http.server
import json
import threading
import urllib.error
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from browser import (
    EMAIL,
    PASSWORD,
    SUPERUSER_EMAIL,
    SUPERUSER_PASSWORD,
    Browser,
    Served,
    call,
    require_chromium,
)
from playwright.sync_api import Page

from backforge.servers import free_port

pytestmark = pytest.mark.slow
require_chromium()

VARIANT = "jwt-multi_tenant"


def _sign_in(page: Page, base: str, email: str, password: str) -> None:
    page.goto(base + "/admin/login")
    page.locator("input[name=username]").fill(email)
    page.locator("input[name=password]").fill(password)
    with page.expect_navigation():
        page.locator("button[type=submit]").click()


def _superuser(served: Served) -> dict[str, str]:
    form = {"username": SUPERUSER_EMAIL, "password": SUPERUSER_PASSWORD}
    tokens = call(served.base + "/api/v1/auth/token", urllib.parse.urlencode(form).encode())
    return {"Authorization": f"Bearer {tokens['access_token']}"}


def _item(served: Served, name: str) -> dict[str, Any]:
    items = call(served.base + "/api/v1/items?limit=100", headers=served.headers)["items"]
    found: dict[str, Any] = next(item for item in items if item["name"] == name)
    return found


def _status(url: str, headers: dict[str, str]) -> int:
    try:
        call(url, headers=headers)
    except urllib.error.HTTPError as error:
        return error.code
    return 200


def test_an_operator_lists_searches_edits_and_deletes_through_the_admin(
    serve: Callable[[str], Served], browser: Callable[[Served], Browser], screenshots: Path
) -> None:
    served = serve(VARIANT)
    # Its own item: the other tests of this run keep theirs.
    item = served.post("/api/v1/items", {"name": "Green gizmo", "description": "for the admin"})
    watched = browser(served)
    page = watched.page
    _sign_in(page, served.base, SUPERUSER_EMAIL, SUPERUSER_PASSWORD)
    assert page.url.rstrip("/").endswith("/admin")

    watched.open(served.base + "/admin/user/list", "table tbody tr")
    assert EMAIL in page.locator("table").inner_text()
    assert "$argon2" not in page.content()
    watched.open(served.base + "/admin/item/list", "table tbody tr")
    listed = page.locator("table").inner_text()
    assert all(name in listed for name in ("Blue widget", "Red gadget", "Green gizmo"))
    page.screenshot(path=screenshots / "admin-list.png", full_page=True)

    page.locator("#search-input").fill("gizmo")
    with page.expect_navigation():
        page.locator("#search-button").click()
    assert "search=gizmo" in page.url
    rows = page.locator("table tbody tr")
    assert rows.count() == 1
    assert "Green gizmo" in rows.inner_text()

    watched.open(served.base + f"/admin/item/edit/{item['id']}", "input[name=name]")
    page.locator("input[name=name]").fill("Green gizmo, renamed by the operator")
    page.screenshot(path=screenshots / "admin-edit.png", full_page=True)
    with page.expect_navigation():
        page.locator("input[type=submit][value=Save], button[type=submit]").first.click()
    seen = call(f"{served.base}/api/v1/items/{item['id']}", headers=served.headers)
    assert seen["name"] == "Green gizmo, renamed by the operator"

    operator = _superuser(served)
    me = call(served.base + "/api/v1/users/me", headers=operator)
    query = urllib.parse.urlencode({"entity_id": item["id"], "action": "item.updated"})
    audited = call(f"{served.base}/api/v1/audit?{query}", headers=operator)["items"]
    assert [(row["actor_id"], row["entity_type"]) for row in audited] == [(me["id"], "item")]
    assert json.dumps(audited[0]["changes"]).count("renamed by the operator") == 1

    watched.open(
        served.base + f"/admin/item/details/{item['id']}", "[data-bs-target='#modal-delete']"
    )
    page.locator("[data-bs-target='#modal-delete']").click()
    page.locator("#modal-delete-button").wait_for(state="visible")
    with page.expect_navigation():
        page.locator("#modal-delete-button").click()
    assert _status(f"{served.base}/api/v1/items/{item['id']}", served.headers) == 404
    watched.assert_stayed_home()


@pytest.mark.parametrize(
    ("email", "password"),
    [(EMAIL, PASSWORD), (SUPERUSER_EMAIL, "not the superuser's passphrase")],
    ids=["member", "wrong-password"],
)
def test_a_member_and_a_wrong_password_are_refused(
    serve: Callable[[str], Served],
    browser: Callable[[Served], Browser],
    email: str,
    password: str,
) -> None:
    served = serve(VARIANT)
    watched = browser(served)
    page = watched.page
    _sign_in(page, served.base, email, password)
    assert page.url.endswith("/admin/login")
    assert "Invalid credentials" in page.locator(".invalid-feedback").first.inner_text()
    page.goto(served.base + "/admin/item/list")
    assert page.url.endswith("/admin/login")
    watched.settle()
    assert watched.blocked == []
    # The refused sign-in answers 400, which Chromium logs; nothing else may be logged.
    assert [e for e in watched.console_errors if "status of 400" not in e] == []


@pytest.fixture
def cross_site() -> Iterator[Callable[[str, dict[str, str]], str]]:
    """A page on another loopback port that posts a form to a URL as soon as it loads."""
    pages: dict[str, bytes] = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = pages.get(self.path, b"")
            self.send_response(200 if body else 404)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()

    def page_posting(action: str, fields: dict[str, str]) -> str:
        inputs = "".join(f'<input name="{k}" value="{v}">' for k, v in fields.items())
        pages["/attack"] = (
            f'<form id="f" method="post" action="{action}">{inputs}</form>'
            "<script>document.getElementById('f').submit()</script>"
        ).encode()
        return f"http://127.0.0.1:{server.server_address[1]}/attack"

    yield page_posting
    server.shutdown()
    thread.join()


def test_a_cross_site_form_post_is_refused(
    serve: Callable[[str], Served],
    browser: Callable[[Served], Browser],
    cross_site: Callable[[str, dict[str, str]], str],
) -> None:
    served = serve(VARIANT)
    item = _item(served, "Red gadget")
    watched = browser(served)
    page = watched.page
    _sign_in(page, served.base, SUPERUSER_EMAIL, SUPERUSER_PASSWORD)
    assert page.url.rstrip("/").endswith("/admin")
    action = f"{served.base}/admin/item/edit/{item['id']}"
    attack = cross_site(action, {"name": "Changed from another site"})
    watched.allowed.add(attack.rsplit("/", 1)[0])
    with page.expect_response(action) as answer:
        page.goto(attack)
    assert answer.value.status == 403
    assert answer.value.request.headers.get("origin", "").startswith("http://127.0.0.1:")
    assert _item(served, "Red gadget")["id"] == item["id"]  # unchanged
