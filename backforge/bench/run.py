"""One `backforge bench` run: render, install, migrate, seed, and measure each variant against
the floor app."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import secrets
import subprocess
import tempfile
import time
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis

from backforge.bench.processes import (
    BenchError,
    CpuLayout,
    UvicornServer,
    cpu_seconds,
    pinned,
    rss_mb,
)
from backforge.bench.results import (
    COLD_STARTS,
    ENDPOINTS,
    FIRST_REQUEST_ENDPOINT,
    STEADY_REQUESTS,
    BenchResult,
    Endpoint,
    EndpointResult,
    FirstRequest,
    Round,
    SideResult,
    VariantBench,
    median,
    stack_modules,
    top_level,
)
from backforge.bench.wrk import find_wrk, run_wrk
from backforge.capture import captured_output
from backforge.databases import database_of
from backforge.errors import UsageError
from backforge.model import Variant, VariantError, select, variant_id, variant_of
from backforge.render import render
from backforge.servers import (
    LOOPBACK,
    ServerPool,
    ServiceError,
)
from backforge.source import benchmarks_dir
from backforge.steps.results import StepFailed
from backforge.steps.tools import in_project, project_python, run_tool, unique_name, uv_sync
from backforge.template import effective_ref, resolve_template, template_checkout

DEFAULT_SET = "database=postgresql,auth=jwt;database=postgresql,auth=jwt,features=cache"
"""The plain variant and the one that caches item reads in Redis, each against the floor."""
DEFAULT_DURATION = 10.0
DEFAULT_CONNECTIONS: tuple[int, ...] = (64,)
DEFAULT_WORKERS = 1
ROUND_TRIP_REQUESTS = 50
"""Sequential requests per server and endpoint over which database round trips are counted."""
COUNT_STATEMENTS = (
    "SELECT coalesce(sum(calls), 0) FROM pg_stat_statements "
    "WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) "
    "AND query NOT LIKE '%pg_stat_statements%' AND query NOT IN "
    "('SELECT pg_advisory_unlock_all()', 'CLOSE ALL', 'UNLISTEN *');"
)
"""The statements the bench database ran, but the three that share one message with `RESET ALL`
(asyncpg's pool resets a connection it takes back with one query string of four statements:
one round trip, counted as RESET ALL) and the bench's own queries."""
DEFAULT_ROUNDS = 3
LOADED_BY_APP = """\
import json, site, sys
before = set(sys.modules)
import app.main
def where(module):
    spec = getattr(module, "__spec__", None)
    if spec is None:
        return None
    if spec.origin not in (None, "namespace"):
        return spec.origin
    return next(iter(spec.submodule_search_locations or []), None)
loaded = [[name, where(module)] for name, module in list(sys.modules.items()) if name not in before]
print(json.dumps({"loaded": loaded, "site": site.getsitepackages()}))
"""
"""Run in the project's environment: the modules importing `app.main` adds to `sys.modules`
(in the order they came) with the file or folder each came from, and the site-packages folders."""
BENCHMARKS_DIR = benchmarks_dir()
SEED_ITEMS = 1000

BENCH_EMAIL = "bench@example.com"
BENCH_PASSWORD = "correct-horse-battery-staple"  # noqa: S105 - a throwaway account on loopback

ProgressCallback = Callable[[str], None]


def _request(
    base_url: str,
    method: str,
    path: str,
    *,
    json_body: Any = None,
    form: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
) -> tuple[int, Any]:
    parsed = urllib.parse.urlsplit(base_url)
    connection = http.client.HTTPConnection(parsed.hostname or LOOPBACK, parsed.port, timeout=30)
    all_headers = dict(headers or {})
    body: bytes | None = None
    if json_body is not None:
        body = json.dumps(json_body).encode()
        all_headers["Content-Type"] = "application/json"
    elif form is not None:
        body = urllib.parse.urlencode(form).encode()
        all_headers["Content-Type"] = "application/x-www-form-urlencoded"
    try:
        connection.request(method, path, body=body, headers=all_headers)
        response = connection.getresponse()
        raw = response.read()
    finally:
        connection.close()
    try:
        return response.status, json.loads(raw) if raw else None
    except ValueError:
        return response.status, raw.decode(errors="replace")


def _floor_auth(variant: Variant) -> str:
    """The floor app's auth mode for a variant (its values come from copier.yml, defaults and
    questions not asked included)."""
    if variant.value("auth") != "jwt":
        return "none"
    return "tenant" if variant.value("multi_tenant") else "jwt"


def _sql_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


@dataclass
class _Seed:
    headers: dict[str, str]
    item_id: str


class _CacheCounter:
    """Redis keyspace hits and misses (INFO stats: the whole server's, which serves only this
    run), sampled around a measured round."""

    def __init__(self, url: str) -> None:
        self.client = redis.Redis.from_url(url, socket_timeout=10)

    def sample(self) -> tuple[int, int]:
        try:
            stats = self.client.info("stats")
        except redis.RedisError as exc:
            raise BenchError(f"reading Redis INFO stats failed: {exc}") from exc
        return int(stats["keyspace_hits"]), int(stats["keyspace_misses"])

    def close(self) -> None:
        self.client.close()


class _VariantRun:
    """Render, install, migrate, seed and measure one variant."""

    def __init__(
        self,
        template: str,
        variant: Variant,
        root: Path,
        pool: ServerPool,
        *,
        wrk: str,
        layout: CpuLayout,
        duration: float,
        warmup: float,
        connections: Sequence[int],
        rounds: int,
        threads: int,
        uv_cache: Path | None,
        progress: ProgressCallback,
        vcs_ref: str | None = None,
        workers: int = 1,
    ) -> None:
        self.template = template
        self.vcs_ref = vcs_ref
        self.variant = variant
        self.answers = dict(variant.answers)
        self.vid = variant_id(self.answers)
        self.root = root / self.vid
        self.project = self.root / "project"
        self.run_dir = self.root / "run"
        self.pool = pool
        self.wrk = wrk
        self.layout = layout
        self.duration = duration
        self.warmup = warmup
        self.connections = list(connections)
        self.workers = workers
        self.rounds = rounds
        self.threads = threads
        self.uv_cache = uv_cache
        self.progress = progress
        self.auth = _floor_auth(variant)
        self.cache: _CacheCounter | None = None

    def say(self, message: str) -> None:
        self.progress(f"[{self.vid}] {message}")

    def run(self) -> VariantBench:
        self.root.mkdir(parents=True)
        self.run_dir.mkdir()
        self.say("rendering")
        with captured_output():
            render(
                self.template,
                self.project,
                self.answers,
                vcs_ref=effective_ref(self.template, self.vcs_ref),
                defaults=True,
                quiet=True,
            )
        self.say("installing (uv sync)")
        _step(lambda: uv_sync(self.project, self.uv_cache))
        self.say("starting PostgreSQL")
        server = database_of(self.variant).server
        if server is None:
            raise BenchError(f"{self.vid}: bench needs a database server")
        database = self.pool.get(server)
        name = unique_name("bench")
        url = database.create_database(name)
        try:
            # The database shares wrk's cores, so that the server under test owns its core.
            with pinned(database.pid, self.layout.load):
                return self._run_on(url, lambda sql: database.execute(sql, name))
        finally:
            with contextlib.suppress(ServiceError, OSError):
                database.drop_database(name)

    def _env(self, url: str) -> dict[str, str]:
        # Not PYTHONDONTWRITEBYTECODE: the timed launches read the bytecode of the first one.
        unwanted = {"VIRTUAL_ENV", "PYTHONPATH", "PYTHONDONTWRITEBYTECODE", "PYTHONHOME"}
        env = {k: v for k, v in os.environ.items() if k not in unwanted}
        env["ACCESS_TOKEN_EXPIRE_MINUTES"] = "600"  # noqa: S105 - outlives the longest run
        env.update(
            DATABASE_URL=url,
            SECRET_KEY=secrets.token_urlsafe(48),
            ENVIRONMENT="production",
            LOG_LEVEL="WARNING",
            LOG_FORMAT="json",
            PYTHONUNBUFFERED="1",
            # Bytecode goes to the run folder (not the checkout's benchmarks/): both servers
            # write theirs on an unmeasured first launch and read it on the timed ones.
            PYTHONPYCACHEPREFIX=str(self.run_dir / "pycache"),
        )
        if self.variant.needs_redis:
            env["REDIS_URL"] = self.pool.get("redis").create_database(unique_name("bench"))
        if "rate_limit" in (self.answers.get("features") or []):
            # The limiter does all its work on every request (count, window, headers) but never
            # refuses one: the load measures what limiting costs, not how fast 429s are.
            env["RATE_LIMIT_DEFAULT"] = env["RATE_LIMIT_AUTH"] = f"{10**9}/minute"
        if "metrics" in (self.answers.get("features") or []):
            # The Docker image's configuration: multiprocess mode, every sample written to a file.
            env["PROMETHEUS_MULTIPROC_DIR"] = str(self.run_dir / "prometheus")
        if "audit" in (self.answers.get("features") or []):
            # The app seals new audit rows every AUDIT_SEAL_SECONDS whatever it serves; those
            # statements (BEGIN, the chains, COMMIT) were counted as the round trips of whichever
            # requests were being counted then: a local CI run saw the floor's /health at 0.06
            # per request. Off here; sealing is no part of any request's work.
            env["AUDIT_SEAL_SECONDS"] = "0"
        if "sentry" in (self.answers.get("features") or []):
            # Initialised as in production (without a DSN it is never imported). No request fails
            # and no trace is sampled; the envelopes sentry-sdk still sends (at the latest when
            # the server stops) are refused at once: nothing listens on port 9.
            env["SENTRY_DSN"] = "http://bench@127.0.0.1:9/0"
        return env

    def _run_on(self, url: str, sql: Callable[[str], str]) -> VariantBench:
        self.say("migrating (alembic upgrade heads)")
        _step(
            lambda: in_project(
                self.project,
                "alembic",
                "upgrade",
                "heads",
                env={"DATABASE_URL": url, "ENVIRONMENT": "test"},
            )
        )
        env = self._env(url)
        self.cache = _CacheCounter(env["REDIS_URL"]) if self.variant.needs_redis else None
        python = project_python(self.project)
        app = UvicornServer(
            "app",
            python,
            "app.main:app",
            self.project,
            env,
            self.run_dir,
            self.layout.server,
            workers=self.workers,
        )
        floor_env = {**env, "FLOOR_AUTH": self.auth}
        floor = UvicornServer(
            "floor",
            python,
            "floor:app",
            BENCHMARKS_DIR,
            floor_env,
            self.run_dir,
            self.layout.server,
            workers=self.workers,
        )
        try:
            self.say("seeding (1 user, 1,000 items)")
            app.start()
            seed = self._seed(app, sql)
            self.say("timing cold starts and first requests")
            result = VariantBench(self.vid, self.answers)
            result.app_cold_start_s, result.app_first = self._launches(app, seed)
            result.floor_cold_start_s, result.floor_first = self._launches(floor, seed)
            modules = self._stack_modules(python, env)
            result.stack_packages = top_level(modules)
            result.stack_import_s = self._stack_import_s(python, env, modules)
            result.database_connect_ms = self._connect_ms(python, url)
            result.notes = self._compare(app, floor, seed)
            counting = self._start_counting(sql, result.notes)
            trips: dict[tuple[str, str], float | None] = {}
            for connections in self.connections:
                for endpoint in ENDPOINTS:
                    measured = self._measure(endpoint, app, floor, seed, connections)
                    for server, side in ((app, measured.app), (floor, measured.floor)):
                        key = (endpoint.name, server.name)
                        if key not in trips:  # the same at any load: counted once
                            trips[key] = (
                                self._round_trips(server, endpoint, seed, sql) if counting else None
                            )
                        side.round_trips = trips[key]
                    result.endpoints.append(measured)
            result.app_rss_mb = rss_mb(app.pid)
            result.floor_rss_mb = rss_mb(floor.pid)
            return result
        finally:
            app.stop()
            floor.stop()
            if self.cache is not None:
                self.cache.close()

    def _start_counting(self, sql: Callable[[str], str], notes: list[str]) -> bool:
        """Make pg_stat_statements readable in the bench database; False (with a note) when
        the server does not load it."""
        try:
            sql("CREATE EXTENSION IF NOT EXISTS pg_stat_statements;")
        except (ServiceError, OSError) as exc:
            notes.append(f"database round trips not counted (pg_stat_statements): {exc}")
            return False
        return True

    def _round_trips(
        self, server: UvicornServer, endpoint: Endpoint, seed: _Seed, sql: Callable[[str], str]
    ) -> float:
        """Database round trips per request: the statements PostgreSQL ran (pg_stat_statements
        calls, BEGIN/COMMIT/ROLLBACK included) over ROUND_TRIP_REQUESTS sequential requests.
        An empty query (`;`, what asyncpg's pre-ping sends) is not a statement, so not counted.
        Statements that share one message with another count once (COUNT_STATEMENTS).
        """
        path = endpoint.path.format(item_id=seed.item_id)
        headers = seed.headers if endpoint.authenticated else {}
        body = {"name": "counted", "description": "x"} if endpoint.method == "POST" else None
        sql("SELECT pg_stat_statements_reset();")
        for _ in range(ROUND_TRIP_REQUESTS):
            status, data = _request(
                server.url, endpoint.method, path, json_body=body, headers=headers
            )
            if status >= 300:
                raise BenchError(f"{server.name}: {endpoint.label} answered {status}: {data}")
        time.sleep(0.2)  # a session closed after its response has sent its last statement
        calls = sql(COUNT_STATEMENTS)
        return int(calls.strip().splitlines()[-1]) / ROUND_TRIP_REQUESTS

    def _launches(self, server: UvicornServer, seed: _Seed) -> tuple[float, FirstRequest]:
        """Median of COLD_STARTS timed launches (to the first `/health` 200), each followed by
        the first two GET items it serves, after one launch and request that warm the bytecode
        caches; then the steady latency of that request on the warm server (sequential)."""
        path = FIRST_REQUEST_ENDPOINT.path.format(item_id=seed.item_id)
        server.start()
        self._timed_get(server, path, seed)
        starts: list[float] = []
        firsts: list[float] = []
        seconds: list[float] = []
        for _ in range(COLD_STARTS):
            starts.append(server.start())
            firsts.append(self._timed_get(server, path, seed))
            seconds.append(self._timed_get(server, path, seed))
        steady = [self._timed_get(server, path, seed) for _ in range(STEADY_REQUESTS)]
        return median(starts), FirstRequest(median(firsts), median(seconds), median(steady))

    def _stack_modules(self, python: str, env: Mapping[str, str]) -> list[str]:
        """The third-party modules importing `app.main` loads, in the project's environment."""
        output = _step(lambda: run_tool([python, "-c", LOADED_BY_APP], self.project, env=dict(env)))
        try:
            found = json.loads(output.strip().splitlines()[-1])
            return stack_modules([(name, where) for name, where in found["loaded"]], found["site"])
        except (ValueError, IndexError, KeyError, TypeError) as exc:
            raise BenchError(
                f"listing the modules app.main loads failed: {output[-2000:]}"
            ) from exc

    def _stack_import_s(self, python: str, env: Mapping[str, str], modules: list[str]) -> float:
        """Median of COLD_STARTS timed launches (to the exit right after the last import) of a
        fresh interpreter, pinned and with the environment of the servers, that turns the garbage
        collector off and imports `modules`; after one unmeasured launch, as the servers' cold
        starts."""
        # Ends with os._exit: the interpreter's teardown of what it imported is no part of a
        # start (the servers' launches end at their first answer).
        # A module the app's import tried and gave up on (sentry-sdk tries an integration for
        # each library it knows, and drops those that are not installed) fails here as it did
        # there, after the same work: carry on, as the app did.
        script = (
            f"import gc, os\ngc.disable()\nfor name in {modules!r}:\n"
            "    try:\n        __import__(name)\n    except Exception:\n        pass\n"
            "os._exit(0)\n"
        )
        command = [*CpuLayout.prefix(self.layout.server), python, "-c", script]
        timings: list[float] = []
        for launch in range(COLD_STARTS + 1):
            started = time.perf_counter()
            done = subprocess.run(
                command,
                cwd=self.run_dir,
                env=dict(env),
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                check=False,
            )
            taken = time.perf_counter() - started
            if done.returncode != 0:
                raise BenchError(f"importing the stack's modules failed:\n{done.stderr[-2000:]}")
            if launch:
                timings.append(taken)
        return median(timings)

    def _timed_get(self, server: UvicornServer, path: str, seed: _Seed) -> float:
        """Milliseconds from sending one GET (on a new connection) to its whole answer."""
        started = time.perf_counter()
        status, data = _request(server.url, "GET", path, headers=seed.headers)
        taken = (time.perf_counter() - started) * 1000
        if status >= 300:
            raise BenchError(f"{server.name}: GET {path} answered {status}: {data}")
        return taken

    def _connect_ms(self, python: str, url: str) -> float:
        """A new PostgreSQL connection's setup time (asyncpg, in the project's environment)."""
        script = str(BENCHMARKS_DIR / "connect_time.py")
        output = _step(lambda: run_tool([python, script, url], self.run_dir))
        try:
            return float(output.strip().splitlines()[-1])
        except (ValueError, IndexError) as exc:
            raise BenchError(f"connect_time.py printed no time: {output[-2000:]}") from exc

    def _seed(self, app: UvicornServer, sql: Callable[[str], str]) -> _Seed:
        headers: dict[str, str] = {}
        if self.auth != "none":
            status, body = _request(
                app.url,
                "POST",
                "/api/v1/auth/register",
                json_body={"email": BENCH_EMAIL, "password": BENCH_PASSWORD},
            )
            if status != 201:
                raise BenchError(f"registering the bench user answered {status}: {body}")
            status, body = _request(
                app.url,
                "POST",
                "/api/v1/auth/token",
                form={"username": BENCH_EMAIL, "password": BENCH_PASSWORD},
            )
            if status != 200 or not isinstance(body, dict) or "access_token" not in body:
                raise BenchError(f"logging in answered {status}: {body}")
            headers["Authorization"] = f"Bearer {body['access_token']}"
        columns = ["id", "name", "description", "created_at", "updated_at"]
        values = [
            "gen_random_uuid()",
            "'item ' || i",
            "'seeded by backforge bench, number ' || i",
            "now() - i * interval '1 second'",
            "now() - i * interval '1 second'",
        ]
        if self.auth != "none":
            query = f"SELECT id FROM users WHERE email = {_sql_literal(BENCH_EMAIL)}"  # noqa: S608
            user_id = sql(query)
            columns.append("owner_id")
            values.append(_sql_literal(user_id.strip()) + "::uuid")
        if self.auth == "tenant":
            status, body = _request(
                app.url,
                "POST",
                "/api/v1/organizations",
                json_body={"name": "Bench"},
                headers=headers,
            )
            if status != 201 or not isinstance(body, dict) or "id" not in body:
                raise BenchError(f"creating the bench organization answered {status}: {body}")
            headers["X-Organization-ID"] = str(body["id"])
            columns.append("organization_id")
            values.append(_sql_literal(str(body["id"])) + "::uuid")
        sql(
            f"INSERT INTO items ({', '.join(columns)}) "  # noqa: S608 - our own constants
            f"SELECT {', '.join(values)} FROM generate_series(1, {SEED_ITEMS}) AS i;"
            "ANALYZE;"
        )
        item_id = sql("SELECT id FROM items ORDER BY created_at DESC LIMIT 1 OFFSET 500").strip()
        return _Seed(headers=headers, item_id=item_id)

    def _compare(self, app: UvicornServer, floor: UvicornServer, seed: _Seed) -> list[str]:
        """Both servers answer every endpoint before any load; return where their JSON differs
        (the keys of the document and of its items: the floor should then be brought in line).
        """
        notes: list[str] = []
        for endpoint in ENDPOINTS:
            path = endpoint.path.format(item_id=seed.item_id)
            headers = seed.headers if endpoint.authenticated else {}
            body = {"name": "check", "description": "x"} if endpoint.method == "POST" else None
            answers = []
            for server in (app, floor):
                status, data = _request(
                    server.url, endpoint.method, path, json_body=body, headers=headers
                )
                if status >= 300:
                    raise BenchError(
                        f"{server.name}: {endpoint.label} answered {status} before the load: "
                        f"{data}\n{server.log_tail()}"
                    )
                answers.append((status, _shape(data)))
            if answers[0] != answers[1]:
                notes.append(
                    f"{endpoint.label}: the floor's answer differs from the app's: "
                    f"app {answers[0]}, floor {answers[1]}"
                )
        return notes

    def _wrk(
        self,
        server: UvicornServer,
        endpoint: Endpoint,
        seed: _Seed,
        seconds: float,
        connections: int,
    ) -> Round:
        path = endpoint.path.format(item_id=seed.item_id)
        script = BENCHMARKS_DIR / endpoint.script if endpoint.script else None
        before = cpu_seconds(server.pid)
        stats = run_wrk(
            self.wrk,
            server.url + path,
            seconds=seconds,
            connections=connections,
            threads=min(self.threads, connections),
            cpus=self.layout.load,
            headers=seed.headers if endpoint.authenticated else {},
            script=script,
        )
        after = cpu_seconds(server.pid)
        if not server.alive():
            raise BenchError(f"the {server.name} server died under load:\n{server.log_tail()}")
        cpu = None
        if before is not None and after is not None and stats.requests:
            cpu = (after - before) * 1e6 / stats.requests
        return Round(stats, cpu)

    def _measure(
        self,
        endpoint: Endpoint,
        app: UvicornServer,
        floor: UvicornServer,
        seed: _Seed,
        connections: int,
    ) -> EndpointResult:
        result = EndpointResult(endpoint, connections=connections)
        sides = ((app, result.app), (floor, result.floor))
        label = f"{endpoint.label} @{connections}"
        self.say(f"{label}: warming up")
        for server, _ in sides:
            self._wrk(server, endpoint, seed, self.warmup, connections)
        for number in range(1, self.rounds + 1):
            for server, side in sides:
                self.say(f"{label}: round {number}/{self.rounds}, {server.name}")
                self._measured_round(server is app, side, endpoint, server, seed, connections)
        for server, side in sides:
            side.rss_mb = rss_mb(server.pid)
        return result

    def _measured_round(
        self,
        counted: bool,
        side: SideResult,
        endpoint: Endpoint,
        server: UvicornServer,
        seed: _Seed,
        connections: int,
    ) -> None:
        """One measured wrk run; for the app of a variant with Redis, the keyspace hits and
        misses it caused (the floor uses no Redis)."""
        cache = self.cache if counted else None
        before = cache.sample() if cache is not None else None
        side.rounds.append(self._wrk(server, endpoint, seed, self.duration, connections))
        if cache is not None and before is not None:
            hits, misses = cache.sample()
            side.count_cache(hits - before[0], misses - before[1])


def _shape(data: Any) -> Any:
    """The keys of a JSON answer, and of the first element of its `items` list."""
    if not isinstance(data, dict):
        return type(data).__name__
    shape: dict[str, Any] = {key: None for key in sorted(data)}
    items = data.get("items")
    if isinstance(items, list) and items and isinstance(items[0], dict):
        shape["items"] = sorted(items[0])
    return shape


def _step(action: Callable[[], str]) -> str:
    try:
        return action()
    except StepFailed as exc:
        raise BenchError(exc.output.strip()[-4000:]) from exc


# ---------------------------------------------------------------------------------------------
# The run
# ---------------------------------------------------------------------------------------------


def _not_benched(variant: Variant) -> str | None:
    """Why bench cannot measure `variant`; None when it can."""
    if not database_of(variant).benchmarked:
        return f"database={variant.database} (the floor uses PostgreSQL)"
    if "billing" in (variant.answers.get("features") or []):
        # Every plan caps the items an account may hold (the free one at the 1,000 the bench
        # seeds): the POST load would be answered 402 instead of measured.
        return "billing (its plans cap the items the POST load creates)"
    return None


def run_bench(
    template: str | None = None,
    spec: str = DEFAULT_SET,
    *,
    duration: float = DEFAULT_DURATION,
    connections: int | Sequence[int] = DEFAULT_CONNECTIONS,
    rounds: int = DEFAULT_ROUNDS,
    workers: int = DEFAULT_WORKERS,
    warmup: float | None = None,
    uv_cache: Path | None = None,
    pool: ServerPool | None = None,
    on_progress: ProgressCallback | None = None,
    vcs_ref: str | None = None,
) -> BenchResult:
    """Benchmark every PostgreSQL variant of `spec` (a `--set` SET) against the floor.

    - `duration`: seconds of each measured wrk run (wrk counts whole seconds, at least 1);
    - `connections`: concurrent connections kept open by wrk, or a list of such counts (every
      endpoint is measured at each, in order);
    - `workers`: uvicorn worker processes of the app and of the floor alike;
    - `rounds`: measured runs per server and endpoint, interleaved app, floor, app, floor ...;
    - `warmup`: seconds of the unmeasured run before each endpoint (default min(duration, 3));
    - `uv_cache`: uv's cache for `uv sync` (default: $UV_CACHE_DIR, else uv's own);
    - `pool`: the servers to use (default: a PostgreSQL started for the run, stopped after);
    - `vcs_ref`: the template revision (`--vcs-ref`; see `backforge.template.resolve_template`).

    Raises WrkNotFound (a UsageError) when wrk is missing, UsageError for a bad set or argument,
    ServiceUnavailable when PostgreSQL is not installed, BenchError when a step fails.
    """
    wrk = find_wrk()
    counts = [connections] if isinstance(connections, int) else list(connections)
    if duration <= 0 or not counts or min(counts) < 1 or rounds < 1 or workers < 1:
        raise UsageError(
            "--duration must be positive; --connections, --workers and rounds at least 1"
        )
    if not BENCHMARKS_DIR.joinpath("floor.py").is_file():
        raise UsageError(f"the floor app is missing: {BENCHMARKS_DIR / 'floor.py'}")
    source, ref = resolve_template(template, vcs_ref)
    try:
        with template_checkout(source, ref, at_ref=True) as folder:
            variants = [variant_of(folder, answers) for answers in select(folder, spec)]
    except VariantError as exc:
        raise UsageError(str(exc)) from exc
    chosen = [variant for variant in variants if _not_benched(variant) is None]
    skipped = [
        f"{variant_id(variant.answers)}: {reason}"
        for variant in variants
        if (reason := _not_benched(variant)) is not None
    ]
    if not chosen:
        raise UsageError(
            f"no variant of {spec!r} can be benchmarked: {'; '.join(skipped)}; "
            "try --set database=postgresql,auth=jwt"
        )
    if uv_cache is None and os.environ.get("UV_CACHE_DIR"):
        uv_cache = Path(os.environ["UV_CACHE_DIR"])
    layout = CpuLayout.detect(workers)
    threads = max(1, min(2, len(layout.load) or 1, max(counts)))
    progress = on_progress or (lambda message: None)
    result = BenchResult(
        duration_s=float(max(1, round(duration))),
        connections=counts,
        workers=workers,
        rounds=rounds,
        threads=threads,
        app_cpus=layout.server,
        load_cpus=layout.load,
        skipped=skipped,
    )
    warm = warmup if warmup is not None else min(duration, 3.0)
    with contextlib.ExitStack() as stack:
        root = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="backforge-bench-")))
        servers = pool if pool is not None else stack.enter_context(ServerPool())
        for variant in chosen:
            run = _VariantRun(
                source,
                variant,
                root,
                servers,
                wrk=wrk,
                layout=layout,
                duration=duration,
                warmup=warm,
                connections=counts,
                rounds=rounds,
                threads=threads,
                workers=workers,
                uv_cache=uv_cache,
                progress=progress,
                vcs_ref=ref,
            )
            result.variants.append(run.run())
    return result
