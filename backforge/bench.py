"""`backforge bench`: the rendered app against a hand-written floor, side by side.

For each variant (default ``database=postgresql,auth=jwt``) the run:

1. renders the project and installs it (`uv sync`, sharing uv's cache);
2. starts a throwaway PostgreSQL (`backforge.servers`), migrates (`alembic upgrade head`) and
   seeds it: one user registered through the API, 1,000 items owned by that user, a token;
3. serves the rendered app and the floor (`benchmarks/floor.py`: Starlette + asyncpg doing the
   same work per request) each with one uvicorn worker (uvloop, httptools, no access log), both
   pinned to one core while wrk and PostgreSQL share the others (when the machine has two or
   more), so that the server under test owns its core;
4. for each endpoint warms both apps up, then runs wrk against them in turn (A B A B ...) for a
   number of rounds, so that drift hits both alike, sampling each server's CPU time around every
   run and its resident memory after the endpoint's rounds.

`run_bench` returns a `BenchResult` (`to_dict()` is what `--json` writes); `print_result` prints
it; the command is `backforge.cli.bench`. Everything started -- servers, processes, temporary
folders -- is torn down, even on failure.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import secrets
import shutil
import signal
import statistics
import subprocess
import tempfile
import time
import urllib.parse
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from backforge.errors import UsageError
from backforge.model import VariantError, select, variant_id
from backforge.render import captured_output, effective_ref, render, template_checkout
from backforge.servers import (
    LOOPBACK,
    ServerPool,
    ServiceError,
    free_port,
)
from backforge.source import benchmarks_dir, default_template
from backforge.steps.results import StepFailed
from backforge.steps.tools import in_project, project_python, unique_name, uv_sync

__all__ = [
    "BENCHMARKS_DIR",
    "DEFAULT_CONNECTIONS",
    "DEFAULT_DURATION",
    "DEFAULT_ROUNDS",
    "DEFAULT_SET",
    "ENDPOINTS",
    "WRK_INSTALL_HINT",
    "BenchError",
    "BenchResult",
    "Endpoint",
    "EndpointResult",
    "Round",
    "SideResult",
    "Target",
    "VariantBench",
    "WrkNotFound",
    "WrkStats",
    "find_wrk",
    "parse_wrk",
    "print_result",
    "run_bench",
    "write_json",
]

DEFAULT_SET = "database=postgresql,auth=jwt"
DEFAULT_DURATION = 10.0
DEFAULT_CONNECTIONS = 64
DEFAULT_ROUNDS = 3
WRK_TIMEOUT = "2s"
"""A request slower than this counts as a socket timeout (an error)."""
WRK_INSTALL_HINT = "apt-get install -y wrk"
BENCHMARKS_DIR = benchmarks_dir()
SEED_ITEMS = 1000
START_TIMEOUT = 60.0
COLD_STARTS = 3
"""Launches timed per server; the median is reported (the first, unmeasured, warms the caches)."""

BENCH_EMAIL = "bench@example.com"
BENCH_PASSWORD = "correct-horse-battery-staple"  # noqa: S105 - a throwaway account on loopback

ProgressCallback = Callable[[str], None]


class BenchError(RuntimeError):
    """The benchmark could not run (a server did not start, a step failed); exit 1."""


class WrkNotFound(UsageError):
    """wrk is not installed; the message says how to install it."""


# ---------------------------------------------------------------------------------------------
# Endpoints and targets
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Endpoint:
    """One benchmarked request: `path` may name `{item_id}` (a seeded item)."""

    name: str
    method: str
    path: str
    authenticated: bool = True
    script: str | None = None
    target_ratio: float | None = None
    """The app/floor requests-per-second ratio the app should reach (the performance targets)."""

    @property
    def label(self) -> str:
        return f"{self.method} {self.path}"


ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint("health", "GET", "/health", authenticated=False, target_ratio=0.6),
    Endpoint("get_item", "GET", "/api/v1/items/{item_id}", target_ratio=0.5),
    Endpoint("list_items", "GET", "/api/v1/items?limit=20", target_ratio=0.5),
    Endpoint("create_item", "POST", "/api/v1/items", script="post_item.lua"),
)

P99_OVER_P50_MAX = 4.0
RSS_MAX_MB = 150.0
COLD_START_MAX_S = 1.5


@dataclass(frozen=True)
class Target:
    """One performance target, checked against a variant's results."""

    name: str
    met: bool
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "met": self.met, "detail": self.detail}


# ---------------------------------------------------------------------------------------------
# wrk
# ---------------------------------------------------------------------------------------------

_TIME_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}
_LATENCY_LINE = re.compile(r"^\s*(50|75|90|99)(?:\.0+)?%\s+([\d.]+)(us|ms|s|m|h)\s*$", re.M)
_REQUESTS_LINE = re.compile(r"^\s*(\d+) requests in ([\d.]+)(us|ms|s|m|h)", re.M)
_RPS_LINE = re.compile(r"^Requests/sec:\s+([\d.]+)", re.M)
_SOCKET_LINE = re.compile(
    r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", re.M
)
_NON_2XX_LINE = re.compile(r"Non-2xx or 3xx responses: (\d+)", re.M)


@dataclass(frozen=True)
class WrkStats:
    """What one wrk run measured. Latencies in milliseconds, by percentile (50, 75, 90, 99)."""

    requests: int
    seconds: float
    rps: float
    latency_ms: Mapping[int, float]
    non_2xx: int = 0
    socket_errors: Mapping[str, int] = field(
        default_factory=lambda: {"connect": 0, "read": 0, "write": 0, "timeout": 0}
    )

    @property
    def errors(self) -> int:
        """Non-2xx/3xx answers plus socket errors (connect, read, write, timeout)."""
        return self.non_2xx + sum(self.socket_errors.values())

    @property
    def p50_ms(self) -> float:
        return self.latency_ms[50]

    @property
    def p99_ms(self) -> float:
        return self.latency_ms[99]

    def to_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "seconds": self.seconds,
            "rps": self.rps,
            "latency_ms": {f"p{key}": value for key, value in sorted(self.latency_ms.items())},
            "non_2xx": self.non_2xx,
            "socket_errors": dict(self.socket_errors),
            "errors": self.errors,
        }


def parse_wrk(output: str) -> WrkStats:
    """Parse the report of `wrk --latency`; raise ValueError when it is not one."""
    rps = _RPS_LINE.search(output)
    requests = _REQUESTS_LINE.search(output)
    latencies = {int(p): float(v) * _TIME_UNITS[u] for p, v, u in _LATENCY_LINE.findall(output)}
    if rps is None or requests is None:
        raise ValueError(f"not a wrk report (no Requests/sec line):\n{output.strip()[-2000:]}")
    missing = {50, 75, 90, 99} - set(latencies)
    if missing:
        raise ValueError(
            f"the wrk report has no latency distribution for {sorted(missing)} "
            "(was --latency given?)"
        )
    socket = _SOCKET_LINE.search(output)
    socket_errors = dict.fromkeys(("connect", "read", "write", "timeout"), 0)
    if socket is not None:
        socket_errors = dict(zip(socket_errors, map(int, socket.groups()), strict=True))
    non_2xx = _NON_2XX_LINE.search(output)
    count, amount, unit = requests.groups()
    return WrkStats(
        requests=int(count),
        seconds=float(amount) * _TIME_UNITS[unit] / 1000,
        rps=float(rps.group(1)),
        latency_ms=latencies,
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        socket_errors=socket_errors,
    )


def find_wrk() -> str:
    """The wrk binary, or WrkNotFound saying how to install it."""
    found = shutil.which("wrk")
    if found is None:
        raise WrkNotFound(
            "wrk (the HTTP load generator) is not installed. Install it with "
            f"`{WRK_INSTALL_HINT}` (Debian/Ubuntu; `brew install wrk` on macOS), "
            "or put it on PATH."
        )
    return found


# ---------------------------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Round:
    """One wrk run against one server, and the server's CPU time per request during it."""

    stats: WrkStats
    cpu_us_per_request: float | None

    def to_dict(self) -> dict[str, Any]:
        return {**self.stats.to_dict(), "cpu_us_per_request": self.cpu_us_per_request}


def _median(values: Sequence[float]) -> float:
    return float(statistics.median(values)) if values else 0.0


@dataclass
class SideResult:
    """One server's rounds on one endpoint (medians over rounds; errors and requests summed)."""

    rounds: list[Round] = field(default_factory=list)
    rss_mb: float | None = None

    @property
    def requests(self) -> int:
        return sum(r.stats.requests for r in self.rounds)

    @property
    def rps(self) -> float:
        return _median([r.stats.rps for r in self.rounds])

    @property
    def p50_ms(self) -> float:
        return _median([r.stats.p50_ms for r in self.rounds])

    @property
    def p99_ms(self) -> float:
        return _median([r.stats.p99_ms for r in self.rounds])

    @property
    def errors(self) -> int:
        return sum(r.stats.errors for r in self.rounds)

    @property
    def cpu_us_per_request(self) -> float | None:
        values = [r.cpu_us_per_request for r in self.rounds if r.cpu_us_per_request is not None]
        return _median(values) if values else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "rps_median": self.rps,
            "p50_ms": self.p50_ms,
            "p99_ms": self.p99_ms,
            "errors": self.errors,
            "requests": self.requests,
            "cpu_us_per_request": self.cpu_us_per_request,
            "rss_mb": self.rss_mb,
            "rounds": [r.to_dict() for r in self.rounds],
        }


@dataclass
class EndpointResult:
    endpoint: Endpoint
    app: SideResult = field(default_factory=SideResult)
    floor: SideResult = field(default_factory=SideResult)

    @property
    def ratio(self) -> float:
        """app/floor median requests per second."""
        return self.app.rps / self.floor.rps if self.floor.rps else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.endpoint.name,
            "method": self.endpoint.method,
            "path": self.endpoint.path,
            "ratio": self.ratio,
            "target_ratio": self.endpoint.target_ratio,
            "app": self.app.to_dict(),
            "floor": self.floor.to_dict(),
        }


@dataclass
class VariantBench:
    """The results of one variant."""

    variant: str
    answers: dict[str, Any]
    endpoints: list[EndpointResult] = field(default_factory=list)
    app_cold_start_s: float = 0.0
    floor_cold_start_s: float = 0.0
    app_rss_mb: float | None = None
    floor_rss_mb: float | None = None
    notes: list[str] = field(default_factory=list)

    def targets(self) -> list[Target]:
        """The performance targets: ratios, zero errors, p99 <= 4 x p50, RSS, cold start."""
        checks: list[Target] = []
        for result in self.endpoints:
            wanted = result.endpoint.target_ratio
            if wanted is not None:
                checks.append(
                    Target(
                        f"{result.endpoint.name}: app/floor >= {wanted}",
                        result.ratio >= wanted,
                        f"{result.ratio:.2f}",
                    )
                )
        errors = sum(result.app.errors for result in self.endpoints)
        checks.append(Target("zero errors (app)", errors == 0, str(errors)))
        spread = [
            f"{r.endpoint.name} {r.app.p99_ms / r.app.p50_ms:.1f}x"
            for r in self.endpoints
            if r.app.p50_ms and r.app.p99_ms > P99_OVER_P50_MAX * r.app.p50_ms
        ]
        checks.append(
            Target(f"p99 <= {P99_OVER_P50_MAX:g} x p50 (app)", not spread, ", ".join(spread))
        )
        rss = self.app_rss_mb or 0.0
        checks.append(Target(f"RSS after load < {RSS_MAX_MB:g} MB", rss < RSS_MAX_MB, f"{rss:.0f}"))
        checks.append(
            Target(
                f"cold start < {COLD_START_MAX_S:g} s",
                self.app_cold_start_s < COLD_START_MAX_S,
                f"{self.app_cold_start_s:.2f}",
            )
        )
        return checks

    def to_dict(self) -> dict[str, Any]:
        return {
            "variant": self.variant,
            "answers": self.answers,
            "cold_start_s": {"app": self.app_cold_start_s, "floor": self.floor_cold_start_s},
            "rss_after_load_mb": {"app": self.app_rss_mb, "floor": self.floor_rss_mb},
            "endpoints": [e.to_dict() for e in self.endpoints],
            "targets": [t.to_dict() for t in self.targets()],
            "notes": self.notes,
        }


@dataclass
class BenchResult:
    """Everything `backforge bench` measured; `to_dict()` is its `--json` document."""

    duration_s: float
    connections: int
    rounds: int
    threads: int
    app_cpus: list[int]
    load_cpus: list[int]
    variants: list[VariantBench] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    """Variants left out of the set, with the reason."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "settings": {
                "duration_s": self.duration_s,
                "connections": self.connections,
                "rounds": self.rounds,
                "wrk_threads": self.threads,
                "server_cpus": self.app_cpus,
                "wrk_cpus": self.load_cpus,
                "database_cpus": self.load_cpus,
                "cpu_count": os.cpu_count(),
            },
            "variants": [v.to_dict() for v in self.variants],
            "skipped": self.skipped,
        }


def write_json(result: BenchResult, path: Path) -> None:
    path.write_text(json.dumps(result.to_dict(), indent=2, default=str) + "\n", encoding="utf-8")


# ---------------------------------------------------------------------------------------------
# Processes
# ---------------------------------------------------------------------------------------------

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def cpu_seconds(pid: int) -> float | None:
    """User plus system CPU time of a process (all its threads), from /proc/<pid>/stat."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    # After the command name: state is field 3; utime and stime are fields 14 and 15.
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS


def rss_mb(pid: int) -> float | None:
    """Resident memory (VmRSS) in MiB, from /proc/<pid>/status."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    match = re.search(r"^VmRSS:\s+(\d+) kB", status, re.M)
    return int(match.group(1)) / 1024 if match else None


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = entry.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(entry.parent.name))
    return found


@contextlib.contextmanager
def pinned(pid: int | None, cpus: Sequence[int]) -> Iterator[None]:
    """Pin a process and its children to `cpus` (children forked later inherit it); restore
    the old affinity of the process and of its children on the way out."""
    saved: dict[int, set[int]] = {}
    if pid is not None and cpus and hasattr(os, "sched_setaffinity"):
        for member in [pid, *_children(pid)]:
            try:
                saved[member] = os.sched_getaffinity(member)
                os.sched_setaffinity(member, cpus)
            except OSError:  # gone, or not ours
                continue
    try:
        yield
    finally:
        if pid is not None and pid in saved:
            for member in {*saved, *_children(pid)}:
                with contextlib.suppress(OSError):
                    os.sched_setaffinity(member, saved.get(member, saved[pid]))


@dataclass(frozen=True)
class CpuLayout:
    """Which cores the servers (and which wrk) run on; empty lists mean no pinning."""

    server: list[int]
    load: list[int]

    @staticmethod
    def detect() -> CpuLayout:
        try:
            cpus = sorted(os.sched_getaffinity(0))
        except AttributeError:  # pragma: no cover - not Linux
            return CpuLayout([], [])
        if len(cpus) < 2 or shutil.which("taskset") is None:
            return CpuLayout([], [])
        return CpuLayout(server=cpus[:1], load=cpus[1:])

    @staticmethod
    def prefix(cpus: Sequence[int]) -> list[str]:
        return ["taskset", "-c", ",".join(map(str, cpus))] if cpus else []


class UvicornServer:
    """One uvicorn process (one worker) serving `target` on a free loopback port."""

    def __init__(
        self,
        name: str,
        python: str,
        target: str,
        app_dir: Path,
        env: Mapping[str, str],
        run_dir: Path,
        cpus: Sequence[int],
    ) -> None:
        self.name = name
        self.python = python
        self.target = target
        self.app_dir = app_dir
        self.env = dict(env)
        self.run_dir = run_dir
        self.cpus = list(cpus)
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = run_dir / f"{name}.log"
        self._log: IO[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def pid(self) -> int:
        if self.process is None:
            raise BenchError(f"the {self.name} server is not running")
        return self.process.pid

    def start(self) -> float:
        """Launch the server; return seconds from launch to the first `/health` 200."""
        self.stop()
        self.port = free_port()
        command = [
            *CpuLayout.prefix(self.cpus),
            self.python,
            "-m",
            "uvicorn",
            self.target,
            "--app-dir",
            str(self.app_dir),
            "--host",
            LOOPBACK,
            "--port",
            str(self.port),
            "--workers",
            "1",
            "--loop",
            "uvloop",
            "--http",
            "httptools",
            "--no-access-log",
            "--log-level",
            "warning",
        ]
        self._log = self.log_path.open("ab")
        started = time.perf_counter()
        self.process = subprocess.Popen(
            command,
            cwd=self.run_dir,  # no .env here: every setting comes from `env`
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = started + START_TIMEOUT
        while True:
            if self.process.poll() is not None:
                code = self.process.returncode
                self.stop()
                raise BenchError(f"the {self.name} server exited with {code}:\n{self.log_tail()}")
            if _health_ok(self.port):
                return time.perf_counter() - started
            if time.perf_counter() > deadline:
                self.stop()
                raise BenchError(
                    f"the {self.name} server did not answer /health within "
                    f"{START_TIMEOUT:.0f}s:\n{self.log_tail()}"
                )
            time.sleep(0.005)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
        elif process is not None:
            process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.strip().splitlines()[-lines:]) or "(empty log)"


def _health_ok(port: int) -> bool:
    connection = http.client.HTTPConnection(LOOPBACK, port, timeout=1)
    try:
        connection.request("GET", "/health")
        return connection.getresponse().status == 200
    except OSError:
        return False
    finally:
        connection.close()


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


def run_wrk(
    wrk: str,
    url: str,
    *,
    seconds: float,
    connections: int,
    threads: int,
    cpus: Sequence[int],
    headers: Mapping[str, str],
    script: Path | None,
) -> WrkStats:
    command = [
        *CpuLayout.prefix(cpus),
        wrk,
        "--latency",
        "-t",
        str(threads),
        "-c",
        str(connections),
        "-d",
        f"{max(1, round(seconds))}s",
        "--timeout",
        WRK_TIMEOUT,
    ]
    if script is not None:
        command += ["-s", str(script)]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    command.append(url)
    try:
        result = subprocess.run(
            command, capture_output=True, text=True, timeout=seconds + 60, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"wrk did not finish: {' '.join(command)}") from exc
    if result.returncode != 0:
        raise BenchError(f"wrk exited {result.returncode}:\n{result.stdout}{result.stderr}")
    try:
        return parse_wrk(result.stdout)
    except ValueError as exc:
        raise BenchError(str(exc)) from exc


# ---------------------------------------------------------------------------------------------
# One variant
# ---------------------------------------------------------------------------------------------


def _floor_auth(answers: Mapping[str, Any]) -> str:
    if answers.get("auth", "jwt") != "jwt":
        return "none"
    return "tenant" if answers.get("multi_tenant") else "jwt"


_REDIS_FEATURES = {"cache", "websockets", "jobs", "rate_limit"}


def _sql_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


@dataclass
class _Seed:
    headers: dict[str, str]
    item_id: str


class _VariantRun:
    """Render, install, migrate, seed and measure one variant."""

    def __init__(
        self,
        template: str,
        answers: dict[str, Any],
        root: Path,
        pool: ServerPool,
        *,
        wrk: str,
        layout: CpuLayout,
        duration: float,
        warmup: float,
        connections: int,
        rounds: int,
        threads: int,
        uv_cache: Path | None,
        progress: ProgressCallback,
        vcs_ref: str | None = None,
    ) -> None:
        self.template = template
        self.vcs_ref = vcs_ref
        self.answers = answers
        self.vid = variant_id(answers)
        self.root = root / self.vid
        self.project = self.root / "project"
        self.run_dir = self.root / "run"
        self.pool = pool
        self.wrk = wrk
        self.layout = layout
        self.duration = duration
        self.warmup = warmup
        self.connections = connections
        self.rounds = rounds
        self.threads = threads
        self.uv_cache = uv_cache
        self.progress = progress
        self.auth = _floor_auth(answers)

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
        database = self.pool.get("postgresql")
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
        if _REDIS_FEATURES & set(self.answers.get("features") or []):
            env["REDIS_URL"] = self.pool.get("redis").create_database(unique_name("bench"))
        return env

    def _run_on(self, url: str, sql: Callable[[str], str]) -> VariantBench:
        self.say("migrating (alembic upgrade head)")
        _step(
            lambda: in_project(
                self.project,
                "alembic",
                "upgrade",
                "head",
                env={"DATABASE_URL": url, "ENVIRONMENT": "test"},
            )
        )
        env = self._env(url)
        python = project_python(self.project)
        app = UvicornServer(
            "app", python, "app.main:app", self.project, env, self.run_dir, self.layout.server
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
        )
        try:
            self.say("seeding (1 user, 1,000 items)")
            app.start()
            seed = self._seed(app, sql)
            self.say("timing cold starts")
            result = VariantBench(self.vid, self.answers)
            result.app_cold_start_s = self._cold_start(app)
            result.floor_cold_start_s = self._cold_start(floor)
            result.notes = self._compare(app, floor, seed)
            for endpoint in ENDPOINTS:
                result.endpoints.append(self._measure(endpoint, app, floor, seed))
            result.app_rss_mb = rss_mb(app.pid)
            result.floor_rss_mb = rss_mb(floor.pid)
            return result
        finally:
            app.stop()
            floor.stop()

    def _cold_start(self, server: UvicornServer) -> float:
        """Median of COLD_STARTS timed launches, after one that warms the bytecode caches."""
        server.start()
        return _median([server.start() for _ in range(COLD_STARTS)])

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

    def _wrk(self, server: UvicornServer, endpoint: Endpoint, seed: _Seed, seconds: float) -> Round:
        path = endpoint.path.format(item_id=seed.item_id)
        script = BENCHMARKS_DIR / endpoint.script if endpoint.script else None
        before = cpu_seconds(server.pid)
        stats = run_wrk(
            self.wrk,
            server.url + path,
            seconds=seconds,
            connections=self.connections,
            threads=self.threads,
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
        self, endpoint: Endpoint, app: UvicornServer, floor: UvicornServer, seed: _Seed
    ) -> EndpointResult:
        result = EndpointResult(endpoint)
        sides = ((app, result.app), (floor, result.floor))
        self.say(f"{endpoint.label}: warming up")
        for server, _ in sides:
            self._wrk(server, endpoint, seed, self.warmup)
        for number in range(1, self.rounds + 1):
            for server, side in sides:
                self.say(f"{endpoint.label}: round {number}/{self.rounds}, {server.name}")
                side.rounds.append(self._wrk(server, endpoint, seed, self.duration))
        for server, side in sides:
            side.rss_mb = rss_mb(server.pid)
        return result


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


def run_bench(
    template: str | None = None,
    spec: str = DEFAULT_SET,
    *,
    duration: float = DEFAULT_DURATION,
    connections: int = DEFAULT_CONNECTIONS,
    rounds: int = DEFAULT_ROUNDS,
    warmup: float | None = None,
    uv_cache: Path | None = None,
    pool: ServerPool | None = None,
    on_progress: ProgressCallback | None = None,
) -> BenchResult:
    """Benchmark every PostgreSQL variant of `spec` (a `--set` SET) against the floor.

    - `duration`: seconds of each measured wrk run (wrk counts whole seconds, at least 1);
    - `connections`: concurrent connections kept open by wrk;
    - `rounds`: measured runs per server and endpoint, interleaved app, floor, app, floor ...;
    - `warmup`: seconds of the unmeasured run before each endpoint (default min(duration, 3));
    - `uv_cache`: uv's cache for `uv sync` (default: $UV_CACHE_DIR, else uv's own);
    - `pool`: the servers to use (default: a PostgreSQL started for the run, stopped after).

    Raises WrkNotFound (a UsageError) when wrk is missing, UsageError for a bad set or argument,
    ServiceUnavailable when PostgreSQL is not installed, BenchError when a step fails.
    """
    wrk = find_wrk()
    if duration <= 0 or connections < 1 or rounds < 1:
        raise UsageError("--duration must be positive, --connections and rounds at least 1")
    if not BENCHMARKS_DIR.joinpath("floor.py").is_file():
        raise UsageError(f"the floor app is missing: {BENCHMARKS_DIR / 'floor.py'}")
    source, ref = (template, None) if template else default_template()
    try:
        with template_checkout(source, ref) as folder:
            variants = select(folder, spec)
    except VariantError as exc:
        raise UsageError(str(exc)) from exc
    chosen = [answers for answers in variants if answers.get("database") == "postgresql"]
    skipped = [
        f"{variant_id(answers)}: database={answers.get('database')} (the floor uses PostgreSQL)"
        for answers in variants
        if answers.get("database") != "postgresql"
    ]
    if not chosen:
        raise UsageError(
            f"no variant of {spec!r} uses database=postgresql, which bench needs "
            "(the floor app runs on asyncpg); try --set database=postgresql,auth=jwt"
        )
    if uv_cache is None and os.environ.get("UV_CACHE_DIR"):
        uv_cache = Path(os.environ["UV_CACHE_DIR"])
    layout = CpuLayout.detect()
    threads = max(1, min(2, len(layout.load) or 1, connections))
    progress = on_progress or (lambda message: None)
    result = BenchResult(
        duration_s=float(max(1, round(duration))),
        connections=connections,
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
        for answers in chosen:
            run = _VariantRun(
                source,
                answers,
                root,
                servers,
                wrk=wrk,
                layout=layout,
                duration=duration,
                warmup=warm,
                connections=connections,
                rounds=rounds,
                threads=threads,
                uv_cache=uv_cache,
                progress=progress,
                vcs_ref=ref,
            )
            result.variants.append(run.run())
    return result


# ---------------------------------------------------------------------------------------------
# Output and the command
# ---------------------------------------------------------------------------------------------


def _number(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def print_result(result: BenchResult, console: Console) -> None:
    """One table per variant (two rows per endpoint: the app, then the floor; it fits 80
    columns), then the cold starts and the targets."""
    pinning = (
        f"server on CPU {','.join(map(str, result.app_cpus))}, "
        f"wrk and PostgreSQL on CPU {','.join(map(str, result.load_cpus))}"
        if result.app_cpus
        else "no CPU pinning"
    )
    for variant in result.variants:
        console.print(
            escape(
                f"backforge bench: {variant.variant} -- {result.connections} connections, "
                f"{result.duration_s:g} s x {result.rounds} rounds, {pinning}"
            ),
            style="bold",
        )
        table = Table(
            box=box.SIMPLE_HEAD,
            pad_edge=False,
            collapse_padding=True,
            caption="ratio: app/floor req/s; medians over rounds; CPU: µs per request",
        )
        table.add_column("endpoint", no_wrap=True)
        for column in ("req/s", "ratio", "p50 ms", "p99 ms", "errors", "CPU µs", "RSS MB"):
            table.add_column(column, justify="right")
        for e in variant.endpoints:
            wanted = e.endpoint.target_ratio
            style = "" if wanted is None else ("green" if e.ratio >= wanted else "red")
            for side, measured in (("app", e.app), ("floor", e.floor)):
                table.add_row(
                    f"{e.endpoint.name} {side}",
                    f"{measured.rps:,.0f}",
                    Text(f"{e.ratio:.2f}", style=style) if side == "app" else "",
                    _number(measured.p50_ms, 2),
                    _number(measured.p99_ms, 2),
                    str(measured.errors),
                    _number(measured.cpu_us_per_request, 0),
                    _number(measured.rss_mb, 0),
                    end_section=side == "floor",
                )
        console.print(table)
        console.print(
            f"cold start (launch to first /health 200, median of {COLD_STARTS}): "
            f"app {variant.app_cold_start_s:.2f} s, floor {variant.floor_cold_start_s:.2f} s",
            highlight=False,
        )
        for target in variant.targets():
            mark = "[green]met[/]" if target.met else "[red]missed[/]"
            detail = f" ({target.detail})" if target.detail else ""
            console.print(f"  {mark}  {escape(target.name + detail)}", highlight=False)
        for note in variant.notes:
            console.print(f"[yellow]note:[/] {escape(note)}", highlight=False)
    for line in result.skipped:
        console.print(f"[yellow]skipped[/] {escape(line)}", highlight=False)
