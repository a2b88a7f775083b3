"""Serve rendered projects for real: the default project end to end, and /ready following a real
database server down and back up. (Every variant's full tier runs in test_check_sets.py.)"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from backforge.cli import app
from backforge.render import render
from backforge.servers import ServiceKind, available, serve
from backforge.steps.tools import uv_sync

pytestmark = pytest.mark.slow

DATABASES = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgresql", id="postgresql"),
    pytest.param(
        "mysql",
        id="mysql",
        marks=pytest.mark.skipif(
            not available("mysql"), reason="apt-get install -y mariadb-server"
        ),
    ),
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _request(
    url: str, headers: dict[str, str] | None = None, data: bytes | None = None
) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers=headers or {}, data=data)  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    return _request(url, headers)


class Served:
    """The rendered app under a real server process, on a free loopback port."""

    def __init__(self, project: Path, database_url: str, command: list[str]) -> None:
        self.port = _free_port()
        self.log = project / "server.log"
        self.base = f"http://127.0.0.1:{self.port}"
        env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "ENVIRONMENT": "local",
            "DB_CONNECT_TIMEOUT": "1",
        }
        env.pop("VIRTUAL_ENV", None)
        self.process = subprocess.Popen(
            [*command, "--host", "127.0.0.1", "--port", str(self.port)],
            cwd=project,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=self.log.open("wb"),
            start_new_session=True,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(self.log.read_text())
            try:
                if _get(self.base + "/health")[0] == 200:
                    return
            except OSError:
                time.sleep(0.1)
        self.close()
        raise RuntimeError("the app did not answer /health within 30 s")

    def get(self, path: str, **headers: str) -> tuple[int, dict[str, str], bytes]:
        return _get(self.base + path, headers)

    def post(
        self, path: str, body: bytes, content_type: str = "application/json"
    ) -> tuple[int, dict[str, str], bytes]:
        return _request(self.base + path, {"Content-Type": content_type}, body)

    def close(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


def _render(base: Path, template_path: str, database: str) -> Path:
    dest = base / f"api-{database}"
    render(
        template_path,
        dest,
        {"project_name": f"Proof {database}", "database": database},
        quiet=True,
    )
    return dest


def _sign_up(served: Served) -> dict[str, str]:
    """Register and log in through the API; the bearer header of the new account."""
    account = {"email": "first@example.com", "password": "a long enough passphrase"}
    status, _, body = served.post("/api/v1/auth/register", json.dumps(account).encode())
    assert status == 201, body
    form = urllib.parse.urlencode({"username": account["email"], "password": account["password"]})
    status, _, body = served.post(
        "/api/v1/auth/token", form.encode(), "application/x-www-form-urlencoded"
    )
    assert status == 200, body
    return {"Authorization": f"Bearer {json.loads(body)['access_token']}"}


@pytest.fixture
def served_defaults(tmp_path: Path, template_path: str) -> Iterator[Served]:
    """`backforge new --defaults` with install, migrated, served by `fastapi run`."""
    dest = tmp_path / "my-api"
    result = CliRunner().invoke(app, ["new", str(dest), "--defaults", "-d", "project_name=My API"])
    assert result.exit_code == 0, result.output
    assert (dest / "uv.lock").is_file()
    status = subprocess.run(
        ["git", "status", "--porcelain"], cwd=dest, capture_output=True, text=True, check=True
    )
    assert status.stdout == "", "new must leave a clean git tree (lockfile committed)"
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{dest / 'app.db'}"}
    env.pop("VIRTUAL_ENV", None)
    subprocess.run(
        [str(dest / ".venv/bin/alembic"), "upgrade", "head"], cwd=dest, env=env, check=True
    )
    served = Served(
        dest, env["DATABASE_URL"], [str(dest / ".venv/bin/fastapi"), "run", "app/main.py"]
    )
    yield served
    served.close()


def test_default_project_serves_health_ready_docs_and_problems(served_defaults: Served) -> None:
    status, headers, body = served_defaults.get("/health")
    assert status == 200
    assert json.loads(body)["status"] == "ok"
    assert len(headers["x-request-id"]) == 32
    status, headers, body = served_defaults.get("/ready")
    assert (status, json.loads(body)["checks"]) == (200, {"database": "ok"})
    status, headers, body = served_defaults.get("/docs")
    assert status == 200
    assert b"swagger" in body.lower()
    assert "x-request-id" in headers
    status, headers, body = served_defaults.get("/api/v1/items")
    assert (status, headers["www-authenticate"]) == (401, "Bearer")
    assert headers["content-type"] == "application/problem+json"
    assert json.loads(body)["request_id"] == headers["x-request-id"]

    status, headers, body = served_defaults.post("/api/v1/auth/register", b"{not json")
    assert (status, headers["content-type"]) == (422, "application/problem+json")
    bearer = _sign_up(served_defaults)
    status, _, body = served_defaults.get("/api/v1/items", **bearer)
    assert (status, json.loads(body)["total"]) == (200, 0)
    status, headers, body = served_defaults.get("/api/v1/items/not-a-uuid", **bearer)
    assert (status, headers["content-type"]) == (422, "application/problem+json")


@pytest.mark.parametrize("database", DATABASES[1:])
def test_ready_follows_the_database_down_and_back(
    database: str, template_path: str, tmp_path: Path
) -> None:
    project = _render(tmp_path, template_path, database)
    uv_sync(project)
    kind: ServiceKind = "postgresql" if database == "postgresql" else "mysql"
    with serve(kind) as server:
        url = server.create_database("ready_probe")
        env = {**os.environ, "DATABASE_URL": url}
        env.pop("VIRTUAL_ENV", None)
        subprocess.run(
            [str(project / ".venv/bin/alembic"), "upgrade", "head"],
            cwd=project,
            env=env,
            check=True,
        )
        served = Served(
            project,
            url,
            [str(project / ".venv/bin/uvicorn"), "app.main:app"],
        )
        try:
            assert served.get("/ready")[0] == 200
            bearer = _sign_up(served)
            assert served.get("/api/v1/items", **bearer)[0] == 200
            server.stop()
            started = time.perf_counter()
            status, headers, body = served.get("/ready")
            elapsed = time.perf_counter() - started
            assert status == 503
            assert headers["content-type"] == "application/problem+json"
            assert json.loads(body)["checks"]["database"] in {"error", "timeout"}
            assert elapsed < 2.0, f"/ready took {elapsed:.2f}s with the database down"
            status, headers, body = served.get("/api/v1/items", **bearer)
            assert status == 503, body  # not a 500: the client may retry
            assert headers["content-type"] == "application/problem+json"
            assert headers["retry-after"] == "1"
            assert "database" in json.loads(body)["detail"]
            server.start()
            deadline = time.monotonic() + 10
            while served.get("/ready")[0] != 200:
                assert time.monotonic() < deadline, "/ready did not recover after the restart"
                time.sleep(0.2)
            assert served.get("/health")[0] == 200
            assert served.get("/api/v1/items", **bearer)[0] == 200
            print(f"\n{database}: /ready answered 503 in {elapsed * 1000:.0f} ms while down")
        finally:
            served.close()
