"""`backforge bench`: the wrk parser, the results, the missing-wrk error, and a short real run."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import psutil
import pytest
import typer
from rich.console import Console
from typer.testing import CliRunner

from backforge.bench import (
    DEFAULT_SET,
    ENDPOINTS,
    WRK_INSTALL_HINT,
    BenchResult,
    CpuLayout,
    Endpoint,
    EndpointResult,
    Round,
    SideResult,
    VariantBench,
    WrkNotFound,
    WrkStats,
    compare_records,
    cpu_seconds,
    find_wrk,
    parse_wrk,
    pinned,
    print_changes,
    print_result,
    rss_mb,
    run_bench,
)
from backforge.bench.processes import UvicornServer
from backforge.bench.results import FirstRequest, stack_modules, top_level
from backforge.cli import app
from backforge.cli.bench import parse_connections
from backforge.errors import UsageError
from backforge.model import select, variant_id
from backforge.servers import available

runner = CliRunner()


def bench_app() -> typer.Typer:
    """The command line, whose `bench` command is under test."""
    return app


# --- the wrk report parser ----------------------------------------------------------------------

CLEAN = """\
Running 10s test @ http://127.0.0.1:8000/health
  1 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     5.12ms    1.03ms  20.00ms   90.00%
    Req/Sec    12.50k     1.00k   14.00k    70.00%
  Latency Distribution
     50%    4.90ms
     75%    5.20ms
     90%  612.00us
     99%    1.25s
  125000 requests in 10.00s, 20.00MB read
Requests/sec:  12500.00
Transfer/sec:      2.00MB
"""

WITH_ERRORS = """\
Running 1m test @ http://127.0.0.1:8000/api/v1/items
  2 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   150.00ms   20.00ms   2.00s    80.00%
    Req/Sec   200.00     20.00   300.00     70.00%
  Latency Distribution
     50%  140.00ms
     75%  160.00ms
     90%  180.00ms
     99%    1.00m
  24000 requests in 1.00m, 5.00MB read
  Socket errors: connect 1, read 2, write 3, timeout 4
  Non-2xx or 3xx responses: 17
Requests/sec:    400.00
Transfer/sec:     85.33KB
"""


def test_parse_wrk_reads_throughput_and_the_latency_distribution() -> None:
    stats = parse_wrk(CLEAN)
    assert stats.requests == 125_000
    assert stats.seconds == pytest.approx(10.0)
    assert stats.rps == pytest.approx(12_500.0)
    assert stats.latency_ms == pytest.approx({50: 4.9, 75: 5.2, 90: 0.612, 99: 1250.0})
    assert (stats.p50_ms, stats.p99_ms) == pytest.approx((4.9, 1250.0))
    assert stats.non_2xx == 0
    assert stats.socket_errors == {"connect": 0, "read": 0, "write": 0, "timeout": 0}
    assert stats.errors == 0


def test_parse_wrk_counts_socket_errors_and_non_2xx_answers_as_errors() -> None:
    stats = parse_wrk(WITH_ERRORS)
    assert stats.seconds == pytest.approx(60.0)
    assert stats.latency_ms[99] == pytest.approx(60_000.0)
    assert stats.socket_errors == {"connect": 1, "read": 2, "write": 3, "timeout": 4}
    assert stats.non_2xx == 17
    assert stats.errors == 1 + 2 + 3 + 4 + 17
    assert stats.to_dict()["errors"] == 27


def test_parse_wrk_accepts_the_long_percentile_format() -> None:
    text = CLEAN.replace("     50%", "  50.000%").replace("     99%", "  99.000%")
    assert parse_wrk(text).latency_ms[50] == pytest.approx(4.9)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("unable to connect to 127.0.0.1:1 Connection refused\n", "not a wrk report"),
        ("\n".join(line for line in CLEAN.splitlines() if "%  " not in line), "--latency"),
    ],
)
def test_parse_wrk_rejects_what_is_not_a_full_report(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_wrk(text)


# --- results and targets ------------------------------------------------------------------------


def stats(rps: float, p50: float, p99: float, errors: int = 0) -> WrkStats:
    return WrkStats(
        requests=int(rps * 10),
        seconds=10.0,
        rps=rps,
        latency_ms={50: p50, 75: p50, 90: p99, 99: p99},
        non_2xx=errors,
    )


def test_side_results_take_medians_over_rounds_and_sum_errors() -> None:
    side = SideResult(
        [
            Round(stats(100, 10, 30), 900.0),
            Round(stats(300, 20, 50, errors=2), 700.0),
            Round(stats(200, 30, 40), None),
        ],
        rss_mb=80.0,
    )
    assert side.rps == 200
    assert (side.p50_ms, side.p99_ms) == (20, 40)
    assert side.errors == 2
    assert side.requests == 6000
    assert side.cpu_us_per_request == 800.0
    assert side.to_dict()["rounds"][1]["cpu_us_per_request"] == 700.0


def cold_start_targets(answers: dict[str, Any], app: float, stack: float | None) -> dict[str, bool]:
    variant = VariantBench("v", answers, app_cold_start_s=app, stack_import_s=stack)
    return {t.name: t.met for t in variant.targets() if t.name.startswith("cold start")}


def test_cold_start_is_checked_against_the_stacks_imports_and_in_seconds_when_plain() -> None:
    ratio, seconds = "cold start <= 1.15 x the stack's imports (app)", "cold start <= 0.6 s (app)"
    plain = {"database": "postgresql", "auth": "jwt", "features": []}
    assert cold_start_targets(plain, 0.575, 0.5) == {ratio: True, seconds: True}  # 1.15 x 0.5
    assert cold_start_targets(plain, 0.58, 0.5) == {ratio: False, seconds: True}
    assert cold_start_targets(plain, 0.61, 0.6) == {ratio: True, seconds: False}
    assert cold_start_targets(plain, 0.5, None) == {ratio: False, seconds: True}  # not measured
    # The seconds are the plain variant's target: a variant with features has only the ratio.
    cached = {**plain, "features": ["cache"]}
    assert cold_start_targets(cached, 0.68, 0.6) == {ratio: True}
    assert cold_start_targets(cached, 0.7, 0.6) == {ratio: False}
    variant = VariantBench("v", plain, app_cold_start_s=0.6, stack_import_s=0.55)
    variant.stack_packages = ["fastapi", "sqlalchemy"]
    document = variant.to_dict()
    assert document["cold_start_s"]["stack_imports"] == 0.55
    assert document["stack_packages"] == ["fastapi", "sqlalchemy"]
    out = io.StringIO()
    print_result(
        BenchResult(1.0, [64], 3, 1, [], [], variants=[variant]), Console(file=out, width=200)
    )
    assert "importing the 2 third-party packages app.main loads" in out.getvalue()
    assert "0.55 s" in out.getvalue()


def test_the_stack_is_the_third_party_modules_app_main_loaded_in_their_order() -> None:
    site = "/p/.venv/lib/python3.12/site-packages"
    stdlib = "/usr/lib/python3.12"
    loaded: list[tuple[str, str | None]] = [
        ("fastapi", f"{site}/fastapi/__init__.py"),
        ("starlette.routing", f"{site}/starlette/routing.py"),
        ("json.decoder", f"{stdlib}/json/decoder.py"),
        ("_asyncio", f"{stdlib}/lib-dynload/_asyncio.so"),
        ("_sysconfigdata__linux_x86_64-linux-gnu", f"{stdlib}/_sysconfigdata.py"),
        ("app", "/p/app/__init__.py"),
        ("app.core.config", "/p/app/core/config.py"),
        ("application_helpers", f"{site}/application_helpers.py"),
        ("opentelemetry", f"{site}/opentelemetry"),  # a namespace package: its folder
        ("sqlalchemy.ext.asyncio", f"{site}/sqlalchemy/ext/asyncio/__init__.py"),
        ("_cffi_backend", f"{site}/_cffi_backend.cpython-312-x86_64-linux-gnu.so"),
        ("cython_runtime", None),  # Cython's entry: no file, not importable
        ("sitecustomize", "/p/.venv/lib/python3.12/site-packages-other/sitecustomize.py"),
    ]
    modules = stack_modules(loaded, [site + "/"])
    assert modules == [
        "fastapi",
        "starlette.routing",
        "application_helpers",  # not `app` although it starts with it
        "opentelemetry",
        "sqlalchemy.ext.asyncio",
        "_cffi_backend",
    ]
    assert stack_modules(loaded, [site]) == modules  # with or without the trailing slash
    assert top_level(modules) == [
        "fastapi",
        "starlette",
        "application_helpers",
        "opentelemetry",
        "sqlalchemy",
        "_cffi_backend",
    ]
    assert top_level(["a.b", "a.c", "b", "a"]) == ["a", "b"]


def test_targets_name_what_was_missed() -> None:
    health, read = ENDPOINTS[0], ENDPOINTS[1]
    variant = VariantBench(
        "postgresql-jwt",
        {"database": "postgresql"},
        endpoints=[
            EndpointResult(
                health,
                SideResult([Round(stats(900, 1, 3), 50.0)]),
                SideResult([Round(stats(1000, 1, 2), 30.0)]),
            ),
            EndpointResult(
                read,
                SideResult([Round(stats(100, 10, 50, errors=1), 900.0)]),
                SideResult([Round(stats(400, 5, 9), 200.0)]),
            ),
        ],
        app_cold_start_s=1.2,
        floor_cold_start_s=0.5,
        app_rss_mb=160.0,
        stack_import_s=1.1,
    )
    assert variant.endpoints[0].ratio == pytest.approx(0.9)
    met = {target.name: target.met for target in variant.targets()}
    assert met == {
        "health: app/floor >= 0.8": True,
        "get_item: app/floor >= 0.33": False,
        "zero errors (app)": False,
        "p99 <= 4 x p50 (app)": False,
        "RSS after load < 150 MB": False,
        "cold start <= 1.15 x the stack's imports (app)": True,
        "cold start <= 0.6 s (app)": False,
    }
    document = variant.to_dict()
    assert document["endpoints"][1]["ratio"] == pytest.approx(0.25)
    json.dumps(document)


def test_the_table_stays_readable_in_80_columns() -> None:
    side = SideResult([Round(stats(12_345, 12.25, 118.5, errors=3), 1234.0)], rss_mb=123.0)
    side.round_trips = 12.5
    result = BenchResult(
        duration_s=10,
        connections=[64, 256],
        rounds=3,
        threads=1,
        app_cpus=[0],
        load_cpus=[1],
        workers=2,
        variants=[
            VariantBench(
                "postgresql-jwt-mt",
                {"database": "postgresql"},
                endpoints=[
                    EndpointResult(endpoint, side, side, connections=connections)
                    for connections in (64, 256)
                    for endpoint in ENDPOINTS
                ],
                notes=["a [bracketed] note"],
                app_first=FirstRequest(1234.5, 456.5, 12.25),
                floor_first=FirstRequest(8.5, 3.0, 2.0),
                database_connect_ms=3.25,
            )
        ],
    )
    side.count_cache(999, 1)
    assert side.cache_per_request == pytest.approx((999 / 123_450, 1 / 123_450))
    console = Console(width=80, record=True, file=io.StringIO())
    print_result(result, console)
    text = console.export_text()
    assert max(len(line) for line in text.splitlines()) <= 80
    assert "…" not in text
    for endpoint in ENDPOINTS:
        assert text.count(f"{endpoint.name} app") == 2  # one table per connection count
        assert text.count(f"{endpoint.name} floor") == 2
    assert "64 connections, 2 workers each" in text
    assert "256 connections, 2 workers each" in text
    assert "12,345" in text
    assert "118.50" in text
    assert "12.5" in text  # database round trips per request
    assert "pg_stat_statements" in text  # what the round trips count
    flat = " ".join(text.split())
    # Redis lookups per request (side made 12,345 x 10 requests), then the hit ratio.
    assert "get_item 0.01 hits + 0.00 misses (1.00)" in flat
    assert "app 1,234.5 + 456.5 ms (steady 12.2 ms), floor 8.5 + 3.0 ms (steady 2.0 ms)" in flat
    assert "database connect 3.2 ms" in flat
    assert "a [bracketed] note" in text


def cached_variant(app_trips: float | None, get_item: float, list_items: float) -> VariantBench:
    """A `cache` variant whose GET item and list reach the given app/floor ratios."""
    floor = SideResult([Round(stats(1000, 1, 2), 100.0)])
    reads = []
    for endpoint, ratio in ((ENDPOINTS[1], get_item), (ENDPOINTS[2], list_items)):
        app = SideResult([Round(stats(1000 * ratio, 1, 2), 100.0)])
        app.round_trips = app_trips if endpoint.name == "get_item" else 2.0
        reads.append(EndpointResult(endpoint, app, floor))
    return VariantBench("postgresql-jwt-cache", {"features": ["cache"]}, endpoints=reads)


def test_a_cached_variant_has_its_own_read_targets_and_no_database_round_trip() -> None:
    met = {t.name: t.met for t in cached_variant(0.0, get_item=0.5, list_items=0.45).targets()}
    assert met["get_item: app/floor >= 0.5"] is True
    assert met["list_items: app/floor >= 0.45"] is True
    assert met["get_item: 0 database round trips when cached (app)"] is True
    assert "get_item: app/floor >= 0.33" not in met
    slow = {t.name: t for t in cached_variant(1.0, get_item=0.49, list_items=0.44).targets()}
    assert slow["get_item: app/floor >= 0.5"].met is False
    assert slow["list_items: app/floor >= 0.45"].met is False
    trips = slow["get_item: 0 database round trips when cached (app)"]
    assert (trips.met, trips.detail) == (False, "1.0")
    uncounted = {t.name: t for t in cached_variant(None, 0.6, 0.6).targets()}
    assert uncounted["get_item: 0 database round trips when cached (app)"].detail == "not counted"
    assert not uncounted["get_item: 0 database round trips when cached (app)"].met
    document = cached_variant(0.0, 0.6, 0.6).to_dict()
    assert [e["target_ratio"] for e in document["endpoints"]] == [0.5, 0.45]


def test_the_plain_variant_keeps_its_targets() -> None:
    plain = cached_variant(3.0, get_item=0.34, list_items=0.34)
    plain.answers = {"features": []}
    met = {t.name: t.met for t in plain.targets()}
    assert met["get_item: app/floor >= 0.33"] is True
    assert met["list_items: app/floor >= 0.33"] is True
    assert not any("when cached" in name for name in met)
    assert [e["target_ratio"] for e in plain.to_dict()["endpoints"]] == [0.33, 0.33]


FIRST = "first get_items after launch <= 3 x steady p50 + database connect (app)"


def test_a_slow_first_request_misses_its_target() -> None:
    variant = VariantBench("postgresql-jwt", {}, database_connect_ms=4.0)
    assert FIRST not in {t.name for t in variant.targets()}  # not measured: no target
    variant.app_first = FirstRequest(first_ms=400.0, second_ms=3.0, steady_ms=3.0)
    missed = {t.name: t for t in variant.targets()}[FIRST]
    assert (missed.met, missed.detail) == (False, "400.0 ms vs 13.0 ms")
    # The first answered at once, but left work behind that the second waited for.
    variant.app_first = FirstRequest(first_ms=5.0, second_ms=400.0, steady_ms=3.0)
    assert {t.name: t.met for t in variant.targets()}[FIRST] is False
    variant.app_first = FirstRequest(13.0, 3.5, steady_ms=3.0)  # 3 x 3 ms + the connect
    assert {t.name: t.met for t in variant.targets()}[FIRST] is True
    variant.database_connect_ms = None  # not measured: no allowance for it
    assert {t.name: t.met for t in variant.targets()}[FIRST] is False
    variant.floor_first = FirstRequest(2.0, 1.5, 1.0)
    assert variant.to_dict()["first_request"] == {
        "endpoint": "get_item",
        "app": {"first_ms": 13.0, "second_ms": 3.5, "steady_p50_ms": 3.0},
        "floor": {"first_ms": 2.0, "second_ms": 1.5, "steady_p50_ms": 1.0},
        "database_connect_ms": None,
    }


def test_the_cache_hit_ratio_sums_the_rounds() -> None:
    side = SideResult([Round(stats(10, 1, 2), None)])  # 100 requests
    assert side.cache_hit_ratio is None  # not counted: no Redis
    assert side.cache_per_request is None
    side.count_cache(0, 0)
    assert side.cache_hit_ratio is None  # nothing looked up
    side.count_cache(90, 10)
    side.count_cache(99, 1)
    assert (side.cache_hits, side.cache_misses) == (189, 11)
    assert side.cache_hit_ratio == pytest.approx(189 / 200)
    assert side.cache_per_request == pytest.approx((1.89, 0.11))
    assert side.to_dict()["cache_hit_ratio"] == pytest.approx(0.945)


def test_the_default_set_is_the_plain_and_the_cache_variant() -> None:
    chosen = select(Path(__file__).parent.parent, DEFAULT_SET)
    assert [variant_id(answers) for answers in chosen] == ["postgresql-jwt", "postgresql-jwt-cache"]
    assert [answers["features"] for answers in chosen] == [[], ["cache"]]


def test_an_endpoint_without_floor_requests_has_ratio_zero() -> None:
    endpoint = Endpoint("x", "GET", "/x")
    assert EndpointResult(endpoint).ratio == 0.0


def test_process_samples_come_from_psutil() -> None:
    cpu = cpu_seconds(os.getpid())
    rss = rss_mb(os.getpid())
    assert cpu is not None and cpu > 0
    assert rss is not None and 1 < rss < 10_000
    assert cpu_seconds(2**22 + 1) is None  # beyond pid_max: no such process


@pytest.mark.skipif(not hasattr(os, "sched_getaffinity"), reason="Linux only")
def test_pinned_restores_the_affinity() -> None:
    before = os.sched_getaffinity(os.getpid())
    with pinned(os.getpid(), [min(before)]):
        assert os.sched_getaffinity(os.getpid()) == {min(before)}
    assert os.sched_getaffinity(os.getpid()) == before


def test_targets_are_checked_at_64_connections_when_measured() -> None:
    read = ENDPOINTS[1]
    slow = SideResult([Round(stats(100, 10, 20), 900.0)])
    fast = SideResult([Round(stats(1000, 1, 2), 100.0)])
    variant = VariantBench(
        "postgresql-jwt",
        {},
        endpoints=[
            EndpointResult(read, fast, fast, connections=256),
            EndpointResult(read, slow, fast, connections=64),
        ],
    )
    assert variant.connection_counts == [256, 64]
    met = {target.name: target.met for target in variant.targets()}
    assert met["get_item: app/floor >= 0.33"] is False  # 64 connections: 0.1, not 256's 1.0
    only_256 = VariantBench("v", {}, endpoints=[EndpointResult(read, fast, fast, connections=256)])
    assert {t.name: t.met for t in only_256.targets()}["get_item: app/floor >= 0.33"] is True


def record(round_trips: float, ratio: float = 0.4, connections: int = 64) -> dict[str, Any]:
    side = SideResult([Round(stats(400, 1, 2), 100.0)])
    side.round_trips = round_trips
    floor = SideResult([Round(stats(400 / ratio, 1, 2), 50.0)])
    floor.round_trips = 3.0
    result = BenchResult(
        duration_s=1,
        connections=[connections],
        rounds=1,
        threads=1,
        app_cpus=[],
        load_cpus=[],
        variants=[
            VariantBench(
                "postgresql-jwt",
                {},
                endpoints=[EndpointResult(ENDPOINTS[1], side, floor, connections=connections)],
            )
        ],
    )
    document: dict[str, Any] = json.loads(json.dumps(result.to_dict()))
    return document


def test_more_round_trips_than_the_previous_record_is_a_regression() -> None:
    changes = compare_records(record(3.0), record(4.0))
    regressions = [c for c in changes if c.regression]
    assert [(c.endpoint, c.measure) for c in regressions] == [
        ("get_item", "app round trips/request")
    ]
    assert regressions[0].describe().startswith("REGRESSION postgresql-jwt get_item @64")
    console = Console(width=120, record=True, file=io.StringIO())
    print_changes(changes, console)
    assert console.export_text().splitlines()[0].startswith("REGRESSION")


def test_fewer_round_trips_or_a_lower_ratio_is_no_regression() -> None:
    changes = compare_records(record(7.0, ratio=0.4), record(3.0, ratio=0.2))
    assert not any(change.regression for change in changes)
    ratio = next(c for c in changes if c.measure == "app/floor")
    assert (ratio.before, ratio.after) == pytest.approx((0.4, 0.2))
    # Only the same endpoint at the same connection count is compared.
    assert compare_records(record(3.0, connections=256), record(9.0)) == []


def test_a_record_without_the_new_fields_still_compares() -> None:
    """Records written before the first request, the cache and the stack's imports were
    measured."""
    old = record(3.0)
    for variant in old["variants"]:
        del variant["first_request"]
        del variant["cold_start_s"]["stack_imports"]
        del variant["stack_packages"]
        for endpoint in variant["endpoints"]:
            for side in ("app", "floor"):
                for name in ("cache_hits", "cache_misses", "cache_hit_ratio"):
                    del endpoint[side][name]
    changes = compare_records(old, record(4.0))
    assert [c.measure for c in changes if c.regression] == ["app round trips/request"]
    assert compare_records(record(3.0), old) != []


def test_compare_refuses_what_is_not_a_record() -> None:
    with pytest.raises(ValueError, match="format"):
        compare_records({"variants": []}, record(3.0))


def test_connections_take_a_list() -> None:
    assert parse_connections("64") == [64]
    assert parse_connections("64,256") == [64, 256]
    assert parse_connections("256, 64,256") == [256, 64]
    for bad in ("", "x", "64,abc", "0", "64,-1"):
        with pytest.raises(UsageError):
            parse_connections(bad)


def test_bench_command_refuses_a_bad_connections_list_or_compare_file(tmp_path: Path) -> None:
    result = runner.invoke(bench_app(), ["bench", "--connections", "64,many"])
    assert result.exit_code == 2, result.output
    assert "--connections" in result.output
    not_a_record = tmp_path / "old.json"
    not_a_record.write_text('{"settings": {}}')
    result = runner.invoke(bench_app(), ["bench", "--compare", str(not_a_record)])
    assert result.exit_code == 2, result.output
    assert "format" in result.output


def test_workers_reach_the_server_command_and_the_cpu_layout(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    server = UvicornServer("app", "python", "app.main:app", tmp_path, {}, tmp_path, [], workers=3)
    command = server.command()
    assert command[command.index("--workers") + 1] == "3"
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: {0, 1, 2, 3}, raising=False)
    monkeypatch.setattr(shutil, "which", lambda _name: "/usr/bin/taskset")
    assert CpuLayout.detect() == CpuLayout(server=[0], load=[1, 2, 3])
    assert CpuLayout.detect(2) == CpuLayout(server=[0, 1], load=[2, 3])
    assert CpuLayout.detect(4) == CpuLayout([], [])  # nothing left for wrk: no pinning


# A server process and its one worker, both idle once they print: a process tree of the test's
# own, since pytest's process may have other children (a session's uvicorn) that use CPU meanwhile.
WORKER = "sum(range(3 * 10**7)); b = bytearray(200 * 2**20); print('ready', flush=True); input()"
SERVER = (
    "import subprocess, sys\n"
    f"worker = subprocess.Popen([sys.executable, '-c', {WORKER!r}], stdin=subprocess.PIPE,"
    " stdout=subprocess.PIPE, text=True)\n"
    "print(worker.stdout.readline().strip(), worker.pid, flush=True)\n"
    "sys.stdin.readline()\n"
    "worker.communicate('')\n"
)


def test_cpu_and_memory_include_the_worker_processes() -> None:
    """uvicorn --workers N: the work happens in children of the process bench started."""
    server = subprocess.Popen(
        [sys.executable, "-c", SERVER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert server.stdout is not None
        ready, worker_pid = server.stdout.readline().split()
        assert ready == "ready"
        own = psutil.Process(server.pid).cpu_times()
        worker_cpu = cpu_seconds(int(worker_pid))
        worker_rss = rss_mb(int(worker_pid))
        assert worker_cpu is not None and worker_rss is not None
        assert worker_cpu > 0.2  # the sum above
        total_cpu = cpu_seconds(server.pid)
        assert total_cpu == pytest.approx(own.user + own.system + worker_cpu, abs=0.05)
        assert worker_rss > 200
        total = rss_mb(server.pid)
        assert total is not None and total >= worker_rss
    finally:
        server.communicate("\n")


# --- wrk missing --------------------------------------------------------------------------------


@pytest.fixture
def no_wrk(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))


@pytest.mark.usefixtures("no_wrk")
def test_missing_wrk_says_how_to_install_it() -> None:
    with pytest.raises(WrkNotFound, match=WRK_INSTALL_HINT):
        find_wrk()
    with pytest.raises(WrkNotFound, match=WRK_INSTALL_HINT):
        run_bench(duration=1, connections=1)


@pytest.mark.usefixtures("no_wrk")
def test_bench_command_exits_2_when_wrk_is_missing() -> None:
    result = runner.invoke(bench_app(), ["bench", "--duration", "1"])
    assert result.exit_code == 2, result.output
    assert "apt-get install -y wrk" in result.output


def test_bench_command_rejects_a_set_without_postgresql() -> None:
    if shutil.which("wrk") is None:
        pytest.skip(f"wrk is not installed ({WRK_INSTALL_HINT})")
    result = runner.invoke(bench_app(), ["bench", "--set", "database=sqlite"])
    assert result.exit_code == 2, result.output
    assert "database=postgresql" in result.output


def test_bench_skips_billing_variants_and_says_why() -> None:
    if shutil.which("wrk") is None:
        pytest.skip(f"wrk is not installed ({WRK_INSTALL_HINT})")
    result = runner.invoke(
        bench_app(), ["bench", "--set", "database=postgresql,auth=jwt,features=[billing]"]
    )
    assert result.exit_code == 2, result.output
    output = " ".join(result.output.split())
    assert "billing (its plans cap the items the POST load creates)" in output
    assert "try --set database=postgresql,auth=jwt" in output


EVERY_FEATURE = (
    "database=postgresql,auth=jwt,multi_tenant=true,features=[cache,rate_limit,websockets,jobs,"
    "email,metrics,sentry,audit,admin,oidc,totp]"
)
"""Every feature but billing, which bench skips."""


# --- a short real run ---------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("wrk") is None, reason=WRK_INSTALL_HINT)
@pytest.mark.skipif(not available("postgresql"), reason="apt-get install -y postgresql")
def test_bench_runs_end_to_end(tmp_path: Path) -> None:
    """It must work, not meet a number: every endpoint answered, by both servers, without errors.
    One variant with every feature bench can measure (the cache among them, so all the default
    set's lines of bench run), started as in production: the bench gives it what production
    asks for (Sentry's DSN, the metrics directory, rate limits that never refuse), and the
    stack's imports include the modules sentry-sdk tries and drops."""
    out = tmp_path / "bench.json"
    short = ["--duration", "1", "--connections", "8", "--json", str(out)]
    result = runner.invoke(bench_app(), ["bench", "--set", EVERY_FEATURE, *short])
    assert result.exit_code == 0, result.output
    assert "app/floor" in result.output
    assert "cold start" in result.output
    assert "third-party packages app.main loads" in result.output
    assert "first and second get_item after launch" in result.output
    assert "Redis keyspace lookups per app request" in result.output
    document: dict[str, Any] = json.loads(out.read_text())
    assert document["format"] == 2
    assert document["settings"]["connections"] == [8]
    assert document["settings"]["workers"] == 1
    assert document["settings"]["rounds"] == 3
    (variant,) = document["variants"]
    assert variant["answers"]["database"] == "postgresql"
    assert variant["answers"]["auth"] == "jwt"
    assert variant["answers"]["multi_tenant"] is True
    assert {"cache", "sentry", "metrics", "rate_limit", "audit"} <= set(
        variant["answers"]["features"]
    )
    first = variant["first_request"]
    for side in ("app", "floor"):
        assert 0 < first[side]["first_ms"] < 60_000
        assert 0 < first[side]["second_ms"] < 60_000
        assert 0 < first[side]["steady_p50_ms"] < 60_000
    assert 0 < first["database_connect_ms"] < 60_000
    assert variant["notes"] == []  # the floor answers with the app's JSON shape
    assert 0 < variant["cold_start_s"]["app"] < 60
    assert 0 < variant["cold_start_s"]["floor"] < 60
    assert 0 < variant["cold_start_s"]["stack_imports"] < 60
    assert {"fastapi", "sqlalchemy", "redis", "sentry_sdk"} <= set(variant["stack_packages"])
    assert "app" not in variant["stack_packages"]
    assert "asyncio" not in variant["stack_packages"]
    assert [e["name"] for e in variant["endpoints"]] == [e.name for e in ENDPOINTS]
    for endpoint in variant["endpoints"]:
        for side in ("app", "floor"):
            measured = endpoint[side]
            assert len(measured["rounds"]) == 3, (endpoint["name"], side)
            assert measured["requests"] > 0, (endpoint["name"], side)
            assert measured["errors"] == 0, (endpoint["name"], side, measured)
            assert measured["rps_median"] > 0
            assert 0 < measured["p50_ms"] <= measured["p99_ms"]
            assert measured["cpu_us_per_request"] is not None
            assert measured["cpu_us_per_request"] > 0
            assert 10 < measured["rss_mb"] < 2000
            trips = measured["round_trips_per_request"]
            if endpoint["name"] == "health":
                assert trips == 0, (side, trips)  # no database work at all
            elif side == "floor" or endpoint["name"] == "create_item":
                # The app's reads come from the cache (with its principal cache, none reaches the
                # database): 0 trips is a target there, not a fact to assert.
                assert trips >= 1, (endpoint["name"], side, trips)
            if side == "floor":
                assert measured["cache_hits"] is None  # counted around the app's rounds only
            elif endpoint["name"] == "health":
                assert measured["cache_hits"] == measured["cache_misses"] == 0
            elif endpoint["name"] == "get_item":
                assert measured["cache_hits"] > 0, measured  # the one item, read again and again
        assert endpoint["connections"] == 8
        assert endpoint["ratio"] > 0
    assert {t["name"] for t in variant["targets"]} >= {
        "zero errors (app)",
        "get_item: app/floor >= 0.5",
        "get_item: 0 database round trips when cached (app)",
        "first get_items after launch <= 3 x steady p50 + database connect (app)",
    }
