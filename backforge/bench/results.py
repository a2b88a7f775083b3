"""What `backforge bench` measures: endpoints, rounds, per-server results, targets, and the
`--json` document (a leaf of the bench package)."""

from __future__ import annotations

import json
import os
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from backforge.bench.wrk import WrkStats

COLD_STARTS = 3
"""Launches timed per server; the median is reported (the first, unmeasured, warms the caches).
Each launch is followed by the first two requests it serves (`FIRST_REQUEST_ENDPOINT`), timed
too: work a request leaves behind after its answer (such as building the OpenAPI document) is felt
by the next one."""
STEADY_REQUESTS = 20
"""Sequential requests to a warm server whose median latency is the first request's yardstick."""


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
    Endpoint("health", "GET", "/health", authenticated=False, target_ratio=0.8),
    Endpoint("get_item", "GET", "/api/v1/items/{item_id}", target_ratio=0.33),
    Endpoint("list_items", "GET", "/api/v1/items?limit=20", target_ratio=0.33),
    Endpoint("create_item", "POST", "/api/v1/items", script="post_item.lua", target_ratio=0.25),
)

FIRST_REQUEST_ENDPOINT = ENDPOINTS[1]
"""`GET /api/v1/items/{item_id}`: the request timed right after each launch."""
FIRST_REQUEST_OVER_STEADY = 3.0
"""The app's first request after a launch takes at most this many times its steady latency, plus
the time to open a database connection (the app opens its pool's first one on that request)."""
CACHED_TARGET_RATIOS: dict[str, float] = {"get_item": 0.5, "list_items": 0.45}
"""The app/floor ratios of a variant with `cache` (the others keep `Endpoint.target_ratio`)."""
CACHED_ROUND_TRIPS_ENDPOINT = "get_item"
"""With `cache`, this endpoint's cached answer makes no database round trip at all."""
P99_OVER_P50_MAX = 4.0
RSS_MAX_MB = 150.0
COLD_START_MAX_OVER_STACK = 1.15
"""The app's cold start takes at most this many times the stack's imports (`stack_modules`)."""
COLD_START_MAX_S = 0.6
"""The plain variant's (no feature) cold start in seconds at most, on a 2-core machine."""
TARGET_CONNECTIONS = 64
"""The targets are checked at this many connections when it was measured (else at the first)."""
RECORD_FORMAT = 2
"""The version of the `--json` document; `compare_records` reads this version only. Fields added
since (first request, database connect, cache hits, the stack's imports) are optional: older
records compare."""
ROUND_TRIP_SLACK = 0.05
"""Round trips per request above the previous record by more than this: a regression."""


@dataclass(frozen=True)
class Target:
    """One performance target, checked against a variant's results."""

    name: str
    met: bool
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "met": self.met, "detail": self.detail}


def stack_modules(
    loaded: Sequence[tuple[str, str | None]], site: Sequence[str], own: str = "app"
) -> list[str]:
    """The third-party modules of `loaded` (the modules importing the app added to
    `sys.modules`, in the order they came, each with the file or folder it came from): those
    from the environment's site-packages folders `site`, but the app's own (`own` and its
    submodules). The standard library's, and modules that came from no file (such as Cython's
    runtime entries), are left out."""
    folders = [folder.rstrip("/") + "/" for folder in site]
    chosen = []
    for name, location in loaded:
        if name.partition(".")[0] == own or location is None:
            continue
        if any(location.startswith(folder) for folder in folders):
            chosen.append(name)
    return chosen


def top_level(modules: Sequence[str]) -> list[str]:
    """The top-level packages of dotted module names, in first-seen order."""
    return list(dict.fromkeys(name.partition(".")[0] for name in modules))


# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Round:
    """One wrk run against one server, and the server's CPU time per request during it."""

    stats: WrkStats
    cpu_us_per_request: float | None

    def to_dict(self) -> dict[str, Any]:
        return {**self.stats.to_dict(), "cpu_us_per_request": self.cpu_us_per_request}


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values)) if values else 0.0


@dataclass
class SideResult:
    """One server's rounds on one endpoint (medians over rounds; errors and requests summed)."""

    rounds: list[Round] = field(default_factory=list)
    rss_mb: float | None = None
    round_trips: float | None = None
    """Database round trips per request (pg_stat_statements calls over sequential requests)."""
    cache_hits: int | None = None
    cache_misses: int | None = None
    """Redis keyspace hits and misses over the measured rounds (None: not counted, no Redis)."""

    def count_cache(self, hits: int, misses: int) -> None:
        self.cache_hits = (self.cache_hits or 0) + hits
        self.cache_misses = (self.cache_misses or 0) + misses

    @property
    def cache_per_request(self) -> tuple[float, float] | None:
        """Redis keyspace hits and misses per request of the measured rounds."""
        if self.cache_hits is None or self.cache_misses is None or not self.requests:
            return None
        return self.cache_hits / self.requests, self.cache_misses / self.requests

    @property
    def cache_hit_ratio(self) -> float | None:
        if self.cache_hits is None or self.cache_misses is None:
            return None
        looked_up = self.cache_hits + self.cache_misses
        return self.cache_hits / looked_up if looked_up else None

    @property
    def requests(self) -> int:
        return sum(r.stats.requests for r in self.rounds)

    @property
    def rps(self) -> float:
        return median([r.stats.rps for r in self.rounds])

    @property
    def p50_ms(self) -> float:
        return median([r.stats.p50_ms for r in self.rounds])

    @property
    def p99_ms(self) -> float:
        return median([r.stats.p99_ms for r in self.rounds])

    @property
    def errors(self) -> int:
        return sum(r.stats.errors for r in self.rounds)

    @property
    def cpu_us_per_request(self) -> float | None:
        values = [r.cpu_us_per_request for r in self.rounds if r.cpu_us_per_request is not None]
        return median(values) if values else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "rps_median": self.rps,
            "p50_ms": self.p50_ms,
            "p99_ms": self.p99_ms,
            "errors": self.errors,
            "requests": self.requests,
            "cpu_us_per_request": self.cpu_us_per_request,
            "rss_mb": self.rss_mb,
            "round_trips_per_request": self.round_trips,
            "cache_hits": self.cache_hits,
            "cache_misses": self.cache_misses,
            "cache_hit_ratio": self.cache_hit_ratio,
            "rounds": [r.to_dict() for r in self.rounds],
        }


@dataclass
class EndpointResult:
    endpoint: Endpoint
    app: SideResult = field(default_factory=SideResult)
    floor: SideResult = field(default_factory=SideResult)
    connections: int = TARGET_CONNECTIONS

    @property
    def ratio(self) -> float:
        """app/floor median requests per second."""
        return self.app.rps / self.floor.rps if self.floor.rps else 0.0

    def to_dict(self, target_ratio: float | None = None) -> dict[str, Any]:
        return {
            "name": self.endpoint.name,
            "method": self.endpoint.method,
            "path": self.endpoint.path,
            "connections": self.connections,
            "ratio": self.ratio,
            "target_ratio": target_ratio,
            "app": self.app.to_dict(),
            "floor": self.floor.to_dict(),
        }


@dataclass(frozen=True)
class FirstRequest:
    """One server's first and second requests after a launch (medians over the timed launches)
    and the same request's steady latency on the warm server (median of STEADY_REQUESTS
    sequential ones)."""

    first_ms: float
    second_ms: float
    steady_ms: float

    @property
    def slowest_ms(self) -> float:
        """What the first users after a launch wait at most: the slower of the two."""
        return max(self.first_ms, self.second_ms)

    def to_dict(self) -> dict[str, float]:
        return {
            "first_ms": self.first_ms,
            "second_ms": self.second_ms,
            "steady_p50_ms": self.steady_ms,
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
    app_first: FirstRequest | None = None
    floor_first: FirstRequest | None = None
    database_connect_ms: float | None = None
    """A new database connection's setup time (a timed asyncpg connect, median)."""
    stack_import_s: float | None = None
    """Launch to exit of a fresh interpreter that imports, garbage collector off, the third-party
    modules importing `app.main` loads (`stack_modules`; median of COLD_STARTS)."""
    stack_packages: list[str] = field(default_factory=list)
    """Their top-level packages."""

    @property
    def plain(self) -> bool:
        """No feature chosen: the variant the absolute cold start target is for."""
        return not self.answers.get("features")

    @property
    def cached(self) -> bool:
        """The variant caches item reads in Redis (the `cache` feature)."""
        return "cache" in (self.answers.get("features") or [])

    def target_ratio(self, endpoint: Endpoint) -> float | None:
        """The app/floor ratio `endpoint` should reach in this variant."""
        if self.cached and endpoint.name in CACHED_TARGET_RATIOS:
            return CACHED_TARGET_RATIOS[endpoint.name]
        return endpoint.target_ratio

    @property
    def connection_counts(self) -> list[int]:
        """The connection counts measured, in the order they ran."""
        return list(dict.fromkeys(result.connections for result in self.endpoints))

    def at(self, connections: int) -> list[EndpointResult]:
        return [result for result in self.endpoints if result.connections == connections]

    def targets(self) -> list[Target]:
        """The performance targets (at TARGET_CONNECTIONS when measured, else the first count):
        ratios, zero errors, p99 <= 4 x p50, RSS, cold start against the stack's imports."""
        counts = self.connection_counts
        load = TARGET_CONNECTIONS if TARGET_CONNECTIONS in counts or not counts else counts[0]
        measured = self.at(load)
        checks: list[Target] = []
        for result in measured:
            wanted = self.target_ratio(result.endpoint)
            if wanted is not None:
                checks.append(
                    Target(
                        f"{result.endpoint.name}: app/floor >= {wanted}",
                        result.ratio >= wanted,
                        f"{result.ratio:.2f}",
                    )
                )
        errors = sum(result.app.errors for result in measured)
        checks.append(Target("zero errors (app)", errors == 0, str(errors)))
        spread = [
            f"{r.endpoint.name} {r.app.p99_ms / r.app.p50_ms:.1f}x"
            for r in measured
            if r.app.p50_ms and r.app.p99_ms > P99_OVER_P50_MAX * r.app.p50_ms
        ]
        checks.append(
            Target(f"p99 <= {P99_OVER_P50_MAX:g} x p50 (app)", not spread, ", ".join(spread))
        )
        checks += self._cache_targets(measured)
        rss = self.app_rss_mb or 0.0
        checks.append(Target(f"RSS after load < {RSS_MAX_MB:g} MB", rss < RSS_MAX_MB, f"{rss:.0f}"))
        checks += self._cold_start_targets()
        if self.app_first is not None:
            connect = self.database_connect_ms or 0.0
            limit = FIRST_REQUEST_OVER_STEADY * self.app_first.steady_ms + connect
            checks.append(
                Target(
                    f"first {FIRST_REQUEST_ENDPOINT.name}s after launch <= "
                    f"{FIRST_REQUEST_OVER_STEADY:g} x steady p50 + database connect (app)",
                    self.app_first.slowest_ms <= limit,
                    f"{self.app_first.slowest_ms:.1f} ms vs {limit:.1f} ms",
                )
            )
        return checks

    def _cold_start_targets(self) -> list[Target]:
        """Cold start <= COLD_START_MAX_OVER_STACK x the stack's imports, and (plain variant)
        <= COLD_START_MAX_S."""
        app = self.app_cold_start_s
        name = f"cold start <= {COLD_START_MAX_OVER_STACK:g} x the stack's imports (app)"
        if self.stack_import_s is None:
            checks = [Target(name, False, "not measured")]
        else:
            limit = COLD_START_MAX_OVER_STACK * self.stack_import_s
            detail = f"{app:.2f} s vs {self.stack_import_s:.2f} s, limit {limit:.2f} s"
            checks = [Target(name, app <= limit, detail)]
        if self.plain:
            checks.append(
                Target(
                    f"cold start <= {COLD_START_MAX_S:g} s (app)",
                    app <= COLD_START_MAX_S,
                    f"{app:.2f} s",
                )
            )
        return checks

    def _cache_targets(self, measured: list[EndpointResult]) -> list[Target]:
        """With `cache`: a cached GET item makes no database round trip."""
        if not self.cached:
            return []
        reads = [r for r in measured if r.endpoint.name == CACHED_ROUND_TRIPS_ENDPOINT]
        if not reads:
            return []
        trips = reads[0].app.round_trips
        name = f"{CACHED_ROUND_TRIPS_ENDPOINT}: 0 database round trips when cached (app)"
        if trips is None:
            return [Target(name, False, "not counted")]
        return [Target(name, trips == 0, f"{trips:.1f}")]

    def to_dict(self) -> dict[str, Any]:
        return {
            "variant": self.variant,
            "answers": self.answers,
            "cold_start_s": {
                "app": self.app_cold_start_s,
                "floor": self.floor_cold_start_s,
                "stack_imports": self.stack_import_s,
            },
            "stack_packages": self.stack_packages,
            "rss_after_load_mb": {"app": self.app_rss_mb, "floor": self.floor_rss_mb},
            "first_request": {
                "endpoint": FIRST_REQUEST_ENDPOINT.name,
                "app": self.app_first.to_dict() if self.app_first else None,
                "floor": self.floor_first.to_dict() if self.floor_first else None,
                "database_connect_ms": self.database_connect_ms,
            },
            "endpoints": [e.to_dict(self.target_ratio(e.endpoint)) for e in self.endpoints],
            "targets": [t.to_dict() for t in self.targets()],
            "notes": self.notes,
        }


@dataclass
class BenchResult:
    """Everything `backforge bench` measured; `to_dict()` is its `--json` document."""

    duration_s: float
    connections: list[int]
    rounds: int
    threads: int
    app_cpus: list[int]
    load_cpus: list[int]
    workers: int = 1
    variants: list[VariantBench] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    """Variants left out of the set, with the reason."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": RECORD_FORMAT,
            "settings": {
                "duration_s": self.duration_s,
                "connections": self.connections,
                "workers": self.workers,
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


@dataclass(frozen=True)
class Change:
    """One measure of one endpoint compared with the previous record."""

    variant: str
    endpoint: str
    connections: int
    measure: str
    before: float
    after: float
    regression: bool

    def describe(self) -> str:
        flag = "REGRESSION " if self.regression else ""
        return (
            f"{flag}{self.variant} {self.endpoint} @{self.connections}: {self.measure} "
            f"{self.before:.2f} -> {self.after:.2f}"
        )


def _keyed(record: dict[str, Any]) -> dict[tuple[str, str, int], dict[str, Any]]:
    if record.get("format") != RECORD_FORMAT:
        raise ValueError(
            f"not a backforge bench record of format {RECORD_FORMAT} "
            f"(format {record.get('format')!r}); write one with --json"
        )
    keyed: dict[tuple[str, str, int], dict[str, Any]] = {}
    for variant in record.get("variants", []):
        for endpoint in variant.get("endpoints", []):
            keyed[variant["variant"], endpoint["name"], int(endpoint["connections"])] = endpoint
    return keyed


def compare_records(previous: dict[str, Any], current: dict[str, Any]) -> list[Change]:
    """What changed per endpoint (same variant and connection count) between two `--json`
    records. Round trips per request are deterministic: more than the previous run (beyond
    ROUND_TRIP_SLACK) is a regression, for the app and the floor alike. Ratios and CPU are
    reported, not judged: on a shared machine they move between runs."""
    before = _keyed(previous)
    changes: list[Change] = []
    for key, endpoint in _keyed(current).items():
        old = before.get(key)
        if old is None:
            continue
        variant, name, connections = key
        for side in ("app", "floor"):
            was = old[side].get("round_trips_per_request")
            now = endpoint[side].get("round_trips_per_request")
            if was is not None and now is not None:
                changes.append(
                    Change(
                        variant,
                        name,
                        connections,
                        f"{side} round trips/request",
                        float(was),
                        float(now),
                        now > was + ROUND_TRIP_SLACK,
                    )
                )
        changes.append(
            Change(
                variant,
                name,
                connections,
                "app/floor",
                float(old["ratio"]),
                float(endpoint["ratio"]),
                False,
            )
        )
        was_cpu, now_cpu = (
            old["app"].get("cpu_us_per_request"),
            endpoint["app"].get("cpu_us_per_request"),
        )
        if was_cpu is not None and now_cpu is not None:
            changes.append(
                Change(
                    variant,
                    name,
                    connections,
                    "app CPU µs/request",
                    float(was_cpu),
                    float(now_cpu),
                    False,
                )
            )
    return changes
