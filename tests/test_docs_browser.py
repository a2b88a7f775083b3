"""/docs and /redoc of rendered projects in a real browser (headless Chromium under Playwright).

Each variant is rendered, migrated and served by a real uvicorn on loopback (tests/browser.py).
Every request the browser makes to another origin is recorded and blocked, so a page that needed
a CDN, a web font or a remote favicon fails here exactly as it would offline. Screenshots of each
page go where tests/browser.py's `screenshots` says.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from browser import EMAIL, ITEM_NAMES, PASSWORD, VARIANTS, Browser, Served, require_chromium
from playwright.sync_api import Page, Request

pytestmark = pytest.mark.slow
require_chromium()

LIST_ITEMS = "#operations-items-list_items_api_v1_items_get"
REDOC_OPERATION = re.compile(r"^tag/[^/]+/operation/(?P<id>.+)$")


def _swagger_operations(page: Page) -> set[tuple[str, str]]:
    pairs = page.eval_on_selector_all(
        ".opblock",
        """blocks => blocks.map(block => [
            block.querySelector('.opblock-summary-method').textContent,
            block.querySelector('.opblock-summary-path').dataset.path])""",
    )
    return {(method, path) for method, path in pairs}


def _authorize(page: Page, scheme: str, fill: Callable[[Any], None]) -> None:
    """Open Authorize, fill one scheme's form, apply it and close the dialog."""
    page.locator(".auth-wrapper button.authorize").click()
    container = page.locator(".modal-ux .auth-container", has_text=scheme)
    fill(container)
    container.locator("button.authorize").click()
    container.locator("button", has_text="Logout").wait_for()
    page.locator(".modal-ux button.btn-done").first.click()
    page.locator(".modal-ux").wait_for(state="detached")


def _try_list_items(page: Page, organization_id: str | None) -> tuple[Request, dict[str, Any]]:
    """Try it out on GET /api/v1/items; the request the page sent and the body it shows."""
    operation = page.locator(LIST_ITEMS)
    operation.locator(".opblock-summary").click()
    operation.locator("button.try-out__btn").click()
    if organization_id is not None:
        operation.locator("tr[data-param-name='X-Organization-ID'] input").fill(organization_id)
    with page.expect_request(lambda sent: "/api/v1/items?" in sent.url) as sent:
        operation.locator("button.execute").click()
    response = operation.locator(".live-responses-table tbody tr.response")
    response.wait_for()
    assert response.locator(".response-col_status").inner_text().strip() == "200"
    body = json.loads(response.locator(".response-col_description .microlight").first.inner_text())
    operation.scroll_into_view_if_needed()
    return sent.value, body


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_swagger_ui_signs_in_and_lists_items(
    variant: str,
    serve: Callable[[str], Served],
    browser: Callable[[Served], Browser],
    screenshots: Path,
) -> None:
    served = serve(variant)
    watched = browser(served)
    page = watched.page
    watched.open(served.base + "/docs", LIST_ITEMS)
    assert _swagger_operations(page) == served.operations
    page.screenshot(path=screenshots / f"{variant}-docs.png")

    def sign_in(form: Any) -> None:
        form.locator("#oauth_username").fill(EMAIL)
        form.locator("#oauth_password").fill(PASSWORD)

    with page.expect_response(lambda answer: answer.url.endswith("/api/v1/auth/token")) as token:
        _authorize(page, "OAuth2PasswordBearer", sign_in)
    assert token.value.status == 200
    sent, body = _try_list_items(page, served.organization_id)
    assert sent.headers["authorization"].startswith("Bearer ey")
    assert {item["name"] for item in body["items"]} == ITEM_NAMES
    assert body["total"] == len(ITEM_NAMES)
    page.locator(LIST_ITEMS).screenshot(path=screenshots / f"{variant}-docs-try-it-out.png")
    watched.assert_stayed_home()


def test_swagger_ui_sends_an_api_key_from_authorize(
    serve: Callable[[str], Served], browser: Callable[[Served], Browser], screenshots: Path
) -> None:
    served = serve("jwt-multi_tenant")
    assert served.api_key is not None
    api_key = served.api_key
    watched = browser(served)
    page = watched.page
    watched.open(served.base + "/docs", LIST_ITEMS)
    _authorize(page, "X-API-Key", lambda form: form.locator("#api_key_value").fill(api_key))
    sent, body = _try_list_items(page, organization_id=None)
    assert sent.headers["x-api-key"] == api_key
    assert "authorization" not in sent.headers
    assert "x-organization-id" not in sent.headers
    assert {item["name"] for item in body["items"]} == ITEM_NAMES
    page.locator(LIST_ITEMS).screenshot(path=screenshots / "jwt-multi_tenant-docs-api-key.png")
    watched.assert_stayed_home()


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_redoc_renders_every_operation(
    variant: str,
    serve: Callable[[str], Served],
    browser: Callable[[Served], Browser],
    screenshots: Path,
) -> None:
    served = serve(variant)
    watched = browser(served)
    page = watched.page
    watched.open(served.base + "/redoc", "[data-section-id*='/operation/']")
    sections = page.eval_on_selector_all(
        "[data-section-id]", "sections => sections.map(s => s.dataset.sectionId)"
    )
    shown = {match["id"] for s in sections if (match := REDOC_OPERATION.match(s))}
    assert shown == served.operation_ids
    list_items = page.locator("[data-section-id='tag/items/operation/list_items_api_v1_items_get']")
    list_items.scroll_into_view_if_needed()
    assert "List Items" in list_items.inner_text()
    watched.assert_stayed_home()
    page.screenshot(path=screenshots / f"{variant}-redoc.png")


def test_the_guard_blocks_and_reports_other_origins(
    serve: Callable[[str], Served], browser: Callable[[Served], Browser]
) -> None:
    """The proof above is only as good as its guard: a page that reaches out must be caught."""
    served = serve("default")
    watched = browser(served)
    watched.page.goto(served.base + "/docs")
    # The promise settles once the script failed: the guard has seen the request by then
    # (networkidle alone may already hold when the script is added, a race on a busy machine).
    outcome = watched.page.evaluate(
        """url => new Promise(resolve => { const script = document.createElement('script');
                    script.onload = () => resolve('loaded');
                    script.onerror = () => resolve('failed');
                    script.src = url; document.head.append(script); })""",
        "https://cdn.example.invalid/swagger-ui-bundle.js",
    )
    assert outcome == "failed"
    assert watched.blocked == ["https://cdn.example.invalid/swagger-ui-bundle.js"]
    with pytest.raises(AssertionError):
        watched.assert_stayed_home()
