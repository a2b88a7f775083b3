"""What the browser tests share: a rendered variant served by uvicorn on loopback (rendered and
synced once per run, whichever module asks first), and a headless Chromium (Debian's, driven by
Playwright) that records and blocks every request to another origin.

Screenshots go to $BACKFORGE_SCREENSHOTS when set, else next to the JUnit report (`screenshots/`
beside the file given to `--junitxml`), else to reports/screenshots/ (git-ignored).
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import (
    BrowserContext,
    ConsoleMessage,
    Page,
    Playwright,
    Request,
    Route,
    sync_playwright,
)
from playwright.sync_api import Error as PlaywrightError

from backforge.executors import HTTPExecutor
from backforge.render import render
from backforge.servers import free_port
from backforge.steps.tools import uv_sync

REPO = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VARIANTS: dict[str, dict[str, Any]] = {
    "default": {},
    # With the back office and the audit log: tests/test_admin_browser.py uses this render too.
    "jwt-multi_tenant": {"auth": "jwt", "multi_tenant": True, "features": ["admin", "audit"]},
}
EMAIL = "docs-reader@example.com"
PASSWORD = "a long enough passphrase"
ITEM_NAMES = {"Blue widget", "Red gadget"}
SUPERUSER_EMAIL = "operator@example.com"
SUPERUSER_PASSWORD = "a superuser's long passphrase"


def require_chromium() -> None:
    """Skip the calling test module without Chromium (called at its import)."""
    if not CHROMIUM.is_file():
        # CI installs it (.ci/run); there a missing browser is a failure, not a skip.
        if os.environ.get("CI"):
            raise RuntimeError(f"{CHROMIUM} is missing: apt-get install -y chromium")
        pytest.skip("apt-get install -y chromium", allow_module_level=True)


def call(
    url: str, body: bytes | None = None, headers: dict[str, str] | None = None
) -> dict[str, Any]:
    request = urllib.request.Request(url, data=body, headers=headers or {})  # noqa: S310
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        answer: dict[str, Any] = json.loads(response.read())
        return answer


@dataclass
class Served:
    """A rendered variant under uvicorn, with an account and two items made through its API."""

    base: str
    document: dict[str, Any]
    multi_tenant: bool
    headers: dict[str, str] = field(default_factory=dict)
    organization_id: str | None = None
    api_key: str | None = None

    def post(self, path: str, payload: dict[str, Any], **headers: str) -> dict[str, Any]:
        headers = {"Content-Type": "application/json", **self.headers, **headers}
        return call(self.base + path, json.dumps(payload).encode(), headers)

    def sign_up(self) -> None:
        self.post("/api/v1/auth/register", {"email": EMAIL, "password": PASSWORD})
        form = urllib.parse.urlencode({"username": EMAIL, "password": PASSWORD}).encode()
        tokens = call(self.base + "/api/v1/auth/token", form)
        self.headers = {"Authorization": f"Bearer {tokens['access_token']}"}
        if self.multi_tenant:
            organization = self.post("/api/v1/organizations", {"name": "Acme"})
            self.organization_id = organization["id"]
            self.headers["X-Organization-ID"] = organization["id"]
            created = self.post(
                f"/api/v1/organizations/{organization['id']}/api-keys", {"name": "docs"}
            )
            self.api_key = created["key"]
        for name in sorted(ITEM_NAMES):
            self.post("/api/v1/items", {"name": name})

    @property
    def operations(self) -> set[tuple[str, str]]:
        return {
            (method.upper(), path)
            for path, item in self.document["paths"].items()
            for method in item
        }

    @property
    def operation_ids(self) -> set[str]:
        return {
            op["operationId"] for item in self.document["paths"].values() for op in item.values()
        }


@contextlib.contextmanager
def _serve(project: Path, template_path: str, name: str) -> Iterator[Served]:
    render(template_path, project, {"project_name": "Docs Proof", **VARIANTS[name]}, quiet=True)
    uv_sync(project)
    env = {
        "DATABASE_URL": f"sqlite:///{project / 'app.db'}",
        "ENVIRONMENT": "local",
        # Cheap password hashing: this proves the pages, not argon2's cost.
        "ARGON2_TIME_COST": "1",
        "ARGON2_MEMORY_COST_KIB": "1024",
        "ARGON2_PARALLELISM": "1",
        # The superuser of /admin (ignored by a variant without auth).
        "FIRST_SUPERUSER_EMAIL": SUPERUSER_EMAIL,
        "FIRST_SUPERUSER_PASSWORD": SUPERUSER_PASSWORD,
    }
    subprocess.run(
        [str(project / ".venv/bin/alembic"), "upgrade", "heads"],
        cwd=project,
        env={**os.environ, **env},
        check=True,
        capture_output=True,
    )
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    command = [str(project / ".venv/bin/uvicorn"), "app.main:app"]
    command += ["--host", "127.0.0.1", "--port", str(port)]
    with (project / "server.log").open("wb") as log:
        server = HTTPExecutor(
            command,
            url=base + "/health",
            cwd=str(project),
            envvars=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            timeout=60,
        )
        with server:
            multi_tenant = bool(VARIANTS[name].get("multi_tenant"))
            served = Served(base, call(base + "/openapi.json"), multi_tenant)
            served.sign_up()
            yield served


@pytest.fixture(scope="session")
def serve(
    tmp_path_factory: pytest.TempPathFactory, template_path: str
) -> Iterator[Callable[[str], Served]]:
    """Serve a variant on first use; every variant stays up until the run ends (the docs and the
    admin browser tests share one render, one `uv sync` and one server)."""
    running: dict[str, Served] = {}
    with contextlib.ExitStack() as stack:

        def get(name: str) -> Served:
            if name not in running:
                project = tmp_path_factory.mktemp("docs-browser") / name
                running[name] = stack.enter_context(_serve(project, template_path, name))
            return running[name]

        yield get


@pytest.fixture(scope="session")
def screenshots(request: pytest.FixtureRequest) -> Path:
    """$BACKFORGE_SCREENSHOTS, else `screenshots/` beside the JUnit report, else reports/."""
    configured = os.environ.get("BACKFORGE_SCREENSHOTS")
    junit = request.config.getoption("xmlpath", None)
    if configured:
        path = Path(configured)
    elif junit:
        path = Path(junit).resolve().parent / "screenshots"
    else:
        path = REPO / "reports" / "screenshots"
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@dataclass
class Browser:
    """A page in a fresh Chromium profile that sees only `origin`; what it tried elsewhere."""

    page: Page
    origin: str
    allowed: set[str] = field(default_factory=set)
    """Other origins this test serves itself (a cross-site page), let through and recorded."""
    blocked: list[str] = field(default_factory=list)
    requested: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)

    def guard(self, route: Route) -> None:
        url = route.request.url
        if origin_of(url) in {None, self.origin, *self.allowed}:
            route.continue_()
        else:
            self.blocked.append(url)
            route.abort("blockedbyclient")

    def record(self, request: Request) -> None:
        self.requested.append(request.url)

    def console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.console_errors.append(f"{message.text} ({message.location.get('url', '')})")

    def open(self, url: str, ready: str) -> None:
        """Load `url` and wait for `ready` to show; on failure, say what the page tried."""
        self.page.goto(url)
        try:
            self.page.locator(ready).first.wait_for()
        except PlaywrightError as exc:
            raise AssertionError(
                f"{url} did not render {ready!r}: blocked {self.blocked}, "
                f"console errors {self.console_errors}"
            ) from exc

    def settle(self) -> None:
        """Wait until nothing is loading, so a late request (a logo, a font) is seen too."""
        self.page.wait_for_load_state("networkidle")

    def assert_stayed_home(self) -> None:
        self.settle()
        assert self.blocked == []
        assert [url for url in self.requested if origin_of(url) not in {None, self.origin}] == []
        assert self.console_errors == []


def origin_of(url: str) -> str | None:
    """scheme://host:port of a network URL; None for data:, blob: and the like."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in {"http", "https", "ws", "wss"}:
        return None
    return f"{parts.scheme}://{parts.netloc}"


@pytest.fixture
def browser(
    playwright: Playwright, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Callable[[Served], Browser]]:
    """Open a fresh Chromium profile for one served app (a new user-data-dir per test)."""
    contexts: list[BrowserContext] = []

    def open_for(served: Served) -> Browser:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / f"profile-{len(contexts)}"),
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1280, "height": 900},
            service_workers="block",
        )
        contexts.append(context)
        page = context.pages[0] if context.pages else context.new_page()
        page.set_default_timeout(20_000)
        watched = Browser(page, served.base)
        context.route("**/*", watched.guard)
        context.on("request", watched.record)
        page.on("console", watched.console)
        page.on("pageerror", lambda error: watched.console_errors.append(f"uncaught: {error}"))
        return watched

    yield open_for
    for context in contexts:
        context.close()
