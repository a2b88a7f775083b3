"""Serve rendered projects for real: the default project end to end, and /ready following a real
database server down and back up. (Every variant's full tier runs in test_check_sets.py.)"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from backforge.cli import app
from backforge.render import render
from backforge.servers import Server, ServerPool, ServiceKind, available, serve
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

    def __init__(
        self,
        project: Path,
        database_url: str,
        command: list[str],
        extra_env: dict[str, str] | None = None,
    ) -> None:
        self.port = _free_port()
        self.log = project / "server.log"
        self.base = f"http://127.0.0.1:{self.port}"
        env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "ENVIRONMENT": "local",
            "DB_CONNECT_TIMEOUT": "1",
            **(extra_env or {}),
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
        self,
        path: str,
        body: bytes,
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, str], bytes]:
        return _request(self.base + path, {"Content-Type": content_type, **(headers or {})}, body)

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
        [str(dest / ".venv/bin/alembic"), "upgrade", "heads"], cwd=dest, env=env, check=True
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
    assert (status, headers["content-type"]) == (404, "application/problem+json")  # no such route


ProjectFor = Callable[[str], Path]


@pytest.fixture(scope="module")
def project_for(template_path: str, tmp_path_factory: pytest.TempPathFactory) -> ProjectFor:
    """The project of a database, rendered and `uv sync`ed once for this module (one uv env)."""
    base = tmp_path_factory.mktemp("served")
    projects: dict[str, Path] = {}

    def project(database: str) -> Path:
        if database not in projects:
            projects[database] = _render(base, template_path, database)
            uv_sync(projects[database])
        return projects[database]

    return project


def _kind(database: str) -> ServiceKind:
    return "postgresql" if database == "postgresql" else "mysql"


def _migrated(project: Path, url: str) -> None:
    env = {**os.environ, "DATABASE_URL": url}
    env.pop("VIRTUAL_ENV", None)
    subprocess.run(
        [str(project / ".venv/bin/alembic"), "upgrade", "heads"], cwd=project, env=env, check=True
    )


@pytest.mark.parametrize("database", DATABASES[1:])
def test_ready_follows_the_database_down_and_back(database: str, project_for: ProjectFor) -> None:
    project = project_for(database)
    with serve(_kind(database)) as server:
        url = server.create_database("ready_probe")
        _migrated(project, url)
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


def _kill_server(pid: int | None) -> None:
    """SIGKILL the database server and every process of its session: a crash, not a shutdown."""
    assert pid is not None
    group = os.getpgid(pid)
    assert group != os.getpgid(0), "the server must run in its own process group"
    os.killpg(group, signal.SIGKILL)


class Writers:
    """Threads that create items through the API until stopped, recording every answer."""

    def __init__(self, served: Served, bearer: dict[str, str], count: int = 4) -> None:
        self.served = served
        self.bearer = bearer
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.statuses: Counter[int] = Counter()
        self.acknowledged: list[str] = []
        self.slowest_503 = 0.0
        self.threads = [threading.Thread(target=self._write, args=(n,)) for n in range(count)]

    def __enter__(self) -> Writers:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stopping.set()
        for thread in self.threads:
            thread.join(timeout=30)

    def _write(self, writer: int) -> None:
        number = 0
        while not self.stopping.is_set():
            number += 1
            body = json.dumps({"name": f"w{writer}-{number}"}).encode()
            started = time.perf_counter()
            try:
                status, _, answer = self.served.post("/api/v1/items", body, headers=self.bearer)
            except OSError:  # the app itself never goes away here; count it as a failure
                status, answer = -1, b""
            elapsed = time.perf_counter() - started
            with self.lock:
                self.statuses[status] += 1
                if status == 201:
                    self.acknowledged.append(json.loads(answer)["id"])
                elif status == 503:
                    self.slowest_503 = max(self.slowest_503, elapsed)
            time.sleep(0.01)


def _stored_ids(served: Served, bearer: dict[str, str]) -> set[str]:
    ids: set[str] = set()
    offset = 0
    while True:
        status, _, body = served.get(f"/api/v1/items?limit=100&offset={offset}", **bearer)
        assert status == 200, body
        page = json.loads(body)
        ids.update(item["id"] for item in page["items"])
        offset += 100
        if offset >= page["total"]:
            return ids


DURABLE_COMMITS = {
    "postgresql": "ALTER DATABASE outage_probe SET synchronous_commit = on",
    "mysql": "SET GLOBAL innodb_flush_log_at_trx_commit = 1",
}


@pytest.mark.parametrize("database", DATABASES[1:])
def test_a_database_killed_mid_load_is_503_only_and_loses_no_acknowledged_write(
    database: str, project_for: ProjectFor
) -> None:
    """Writers keep creating items while the database server is SIGKILLed, stays down, and
    restarts (crash recovery, then start-up): every answer is a 201 or a 503 problem, each 503
    within 2 s, and every item acknowledged with a 201 is there afterwards."""
    project = project_for(database)
    with serve(_kind(database)) as server:
        url = server.create_database("outage_probe")
        # The test servers trade durability for speed; a commit must survive a crash here.
        server.execute(DURABLE_COMMITS[database])
        _migrated(project, url)
        served = Served(project, url, [str(project / ".venv/bin/uvicorn"), "app.main:app"])
        try:
            bearer = _sign_up(served)
            with Writers(served, bearer) as writers:
                time.sleep(1.0)
                _kill_server(server.pid)  # requests in flight lose their connections
                time.sleep(1.0)  # requests while it is down
                server.start()  # and while it recovers and starts up
                deadline = time.monotonic() + 30
                while served.get("/ready")[0] != 200:
                    assert time.monotonic() < deadline, "/ready did not recover"
                    time.sleep(0.1)
                time.sleep(1.0)
            stored = _stored_ids(served, bearer)
        finally:
            served.close()
    statuses = dict(writers.statuses)
    print(f"\n{database}: answers {statuses}, slowest 503 {writers.slowest_503:.2f}s")
    assert set(statuses) <= {201, 503}, statuses
    assert statuses.get(503, 0) > 0, "the outage was not seen"
    assert statuses.get(201, 0) > 0
    assert writers.slowest_503 < 2.0
    lost = set(writers.acknowledged) - stored
    assert not lost, f"{len(lost)} acknowledged items are missing after the restart"


def _dockerfile_env(project: Path, name: str) -> str:
    match = re.search(rf"^ENV {name}=(\S+)$", (project / "Dockerfile").read_text(), re.M)
    assert match, f"the Dockerfile sets no {name}"
    return match.group(1)


def test_sigterm_lets_requests_in_flight_finish(project_for: ProjectFor) -> None:
    """The Dockerfile's graceful-shutdown timeout, under compose's longer stop_grace_period, and
    a real uvicorn given SIGTERM while slow requests (production-cost password hashing) run."""
    project = project_for("postgresql")
    timeout = int(_dockerfile_env(project, "UVICORN_TIMEOUT_GRACEFUL_SHUTDOWN"))
    compose = yaml.safe_load((project / "compose.yaml").read_text())
    grace = compose["services"]["api"]["stop_grace_period"]
    assert re.fullmatch(r"\d+s", grace), grace
    assert int(grace[:-1]) > timeout > 0

    with serve("postgresql") as server:
        url = server.create_database("sigterm_probe")
        _migrated(project, url)
        served = Served(
            project,
            url,
            [str(project / ".venv/bin/uvicorn"), "app.main:app"],
            # production-strength argon2 and more: each login takes a good fraction of a second
            extra_env={
                "UVICORN_TIMEOUT_GRACEFUL_SHUTDOWN": str(timeout),
                "ARGON2_TIME_COST": "12",
                "ARGON2_PARALLELISM": "1",
            },
        )
        try:
            _sign_up(served)
            form = urllib.parse.urlencode(
                {"username": "first@example.com", "password": "a long enough passphrase"}
            ).encode()
            results: list[tuple[int, float]] = []

            def log_in() -> None:
                started = time.perf_counter()
                status, _, _ = served.post(
                    "/api/v1/auth/token", form, "application/x-www-form-urlencoded"
                )
                results.append((status, time.perf_counter() - started))

            logins = [threading.Thread(target=log_in) for _ in range(3)]
            for thread in logins:
                thread.start()
            time.sleep(0.2)  # all three are being served
            os.killpg(served.process.pid, signal.SIGTERM)
            for thread in logins:
                thread.join(timeout=timeout + 5)
            exit_code = served.process.wait(timeout=timeout + 5)
        finally:
            served.close()
    print(f"\nlogins in flight at SIGTERM: {results}; server exit code {exit_code}")
    assert [status for status, _ in results] == [200, 200, 200]
    assert min(seconds for _, seconds in results) > 0.2, "the logins were not in flight"
    # uvicorn exits 0, or re-raises the SIGTERM it handled once it has shut down gracefully
    assert exit_code in {0, -signal.SIGTERM}
    log = served.log.read_text()
    assert "Waiting for application shutdown" in log
    assert "Application shutdown complete" in log


# ---------------------------------------------------------------------------------------------
# Features under two real processes: one Redis, one limit, one cache
# ---------------------------------------------------------------------------------------------

LIMIT = 8  # requests per minute per user, across both processes


@pytest.fixture(scope="module")
def two_processes(
    template_path: str, server_pool: ServerPool, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Served, Served, Server, str]]:
    project = tmp_path_factory.mktemp("features") / "api"
    answers = {
        "project_name": "Two Workers",
        "database": "postgresql",
        "features": ["cache", "rate_limit"],
    }
    render(template_path, project, answers, quiet=True)
    uv_sync(project)
    postgres, redis = server_pool.get("postgresql"), server_pool.get("redis")
    database_url = postgres.create_database("two_workers")
    redis_url = redis.create_database("two_workers")
    _migrated(project, database_url)
    env = {"REDIS_URL": redis_url, "RATE_LIMIT_DEFAULT": f"{LIMIT}/minute"}
    uvicorn = [str(project / ".venv/bin/uvicorn"), "app.main:app"]
    first = Served(project, database_url, uvicorn, env)
    try:
        second = Served(project, database_url, uvicorn, env)
    except BaseException:
        first.close()
        raise
    try:
        yield first, second, postgres, "two_workers"
    finally:
        first.close()
        second.close()
        postgres.drop_database("two_workers")
        redis.drop_database("two_workers")


COMPILED_AT_START = """
import importlib._bootstrap_external as external, json

compiled = []
source_to_code = external.SourceLoader.source_to_code

def counted(self, data, path, *, _optimize=-1):
    compiled.append(path)
    return source_to_code(self, data, path, _optimize=_optimize)

external.SourceLoader.source_to_code = counted
import app.main
print(json.dumps(compiled))
"""


def test_the_image_starts_without_compiling_its_code(
    project_for: ProjectFor, tmp_path: Path
) -> None:
    """The runtime image writes no bytecode, so the Dockerfile's build step must leave none of
    the code for a start to compile; bytecode checked by hash never runs a changed source."""
    project = project_for("sqlite")
    dockerfile = (project / "Dockerfile").read_text().splitlines()
    step = next(line for line in dockerfile if line.startswith("RUN ") and "compileall" in line)
    image = tmp_path / "image"  # the builder's /app: the code, and the environment beside it
    for part in ("app", "migrations"):
        shutil.copytree(project / part, image / part, ignore=shutil.ignore_patterns("__pycache__"))
    (image / ".venv").symlink_to(project / ".venv")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env.update(
        PYTHONDONTWRITEBYTECODE="1",
        DATABASE_URL=f"sqlite:///{tmp_path / 'app.db'}",
        ENVIRONMENT="test",
    )

    def compiled_at_start() -> set[str]:
        result = subprocess.run(
            [str(image / ".venv/bin/python"), "-c", COMPILED_AT_START],
            cwd=image,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        paths = json.loads(result.stdout.strip().splitlines()[-1])
        code = [str(image / "app"), str(image / "migrations")]
        return {
            str(Path(path).relative_to(image)) for path in paths if path.startswith(tuple(code))
        }

    assert "app/main.py" in compiled_at_start(), "the probe sees no compilation"
    subprocess.run(shlex.split(step.removeprefix("RUN ")), cwd=image, env=env, check=True)
    assert compiled_at_start() == set()
    with (image / "app/__init__.py").open("a") as source:
        source.write("CHANGED_AFTER_THE_BUILD = True\n")
    assert compiled_at_start() == {"app/__init__.py"}


def _send(
    served: Served, method: str, path: str, bearer: dict[str, str], body: object
) -> tuple[int, bytes]:
    request = urllib.request.Request(  # noqa: S310  (loopback)
        served.base + path,
        data=json.dumps(body).encode(),
        headers={**bearer, "Content-Type": "application/json"},
        method=method,
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_two_processes_share_the_cache_and_the_limit(
    two_processes: tuple[Served, Served, Server, str],
) -> None:
    first, second, postgres, database = two_processes
    bearer = _sign_up(first)  # signing up counts for the IP, not for the user
    used = 0

    status, body = _send(first, "POST", "/api/v1/items", bearer, {"name": "Original"})
    used += 1
    assert status == 201, body
    item = json.loads(body)
    path = f"/api/v1/items/{item['id']}"

    status, _, body = second.get(path, **bearer)  # a miss: cached by the second process
    used += 1
    assert (status, json.loads(body)["name"]) == (200, "Original")
    item_id = uuid.UUID(item["id"])  # a UUID: safe to put in the statement
    postgres.execute(f"UPDATE items SET name = 'Behind its back' WHERE id = '{item_id}'", database)  # noqa: S608
    status, _, body = second.get(path, **bearer)  # a hit: the row changed, the cache did not
    used += 1
    assert json.loads(body)["name"] == "Original"

    status, body = _send(first, "PATCH", path, bearer, {"description": "written by the first"})
    assert status == 200, body
    used += 1
    status, headers, body = second.get(path, **bearer)  # the first's write invalidated it
    used += 1
    assert status == 200
    assert json.loads(body)["name"] == "Behind its back"
    assert json.loads(body)["description"] == "written by the first"
    assert headers["ratelimit"].startswith(f'"default";r={LIMIT - used};t=')
    assert headers["ratelimit-policy"] == f'"default";q={LIMIT};w=60'

    statuses = []
    for turn in range(2 * LIMIT):
        served = first if turn % 2 == 0 else second
        statuses.append(served.get("/api/v1/items", **bearer)[0])
    allowed = LIMIT - used
    assert statuses == [200] * allowed + [429] * (2 * LIMIT - allowed), statuses
    status, headers, body = second.get("/api/v1/items", **bearer)
    assert status == 429
    assert headers["content-type"] == "application/problem+json"
    assert int(headers["retry-after"]) >= 1
    assert first.get("/health")[0] == 200  # never limited
    assert second.get("/ready")[0] == 200
