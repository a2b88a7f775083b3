"""`backforge bench`: the wrk parser, the results, the missing-wrk error, and a short real run."""

from __future__ import annotations

import io
import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
import typer
from rich.console import Console
from typer.testing import CliRunner

from backforge.bench import (
    ENDPOINTS,
    WRK_INSTALL_HINT,
    BenchResult,
    Endpoint,
    EndpointResult,
    Round,
    SideResult,
    VariantBench,
    WrkNotFound,
    WrkStats,
    cpu_seconds,
    find_wrk,
    parse_wrk,
    pinned,
    print_result,
    rss_mb,
    run_bench,
)
from backforge.cli import app
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


def test_targets_name_what_was_missed() -> None:
    health, read = ENDPOINTS[0], ENDPOINTS[1]
    variant = VariantBench(
        "postgresql-jwt",
        {"database": "postgresql"},
        endpoints=[
            EndpointResult(
                health,
                SideResult([Round(stats(700, 1, 3), 50.0)]),
                SideResult([Round(stats(1000, 1, 2), 30.0)]),
            ),
            EndpointResult(
                read,
                SideResult([Round(stats(100, 10, 50, errors=1), 900.0)]),
                SideResult([Round(stats(400, 5, 9), 200.0)]),
            ),
        ],
        app_cold_start_s=1.2,
        app_rss_mb=160.0,
    )
    assert variant.endpoints[0].ratio == pytest.approx(0.7)
    met = {target.name: target.met for target in variant.targets()}
    assert met == {
        "health: app/floor >= 0.6": True,
        "get_item: app/floor >= 0.5": False,
        "zero errors (app)": False,
        "p99 <= 4 x p50 (app)": False,
        "RSS after load < 150 MB": False,
        "cold start < 1.5 s": True,
    }
    document = variant.to_dict()
    assert document["endpoints"][1]["ratio"] == pytest.approx(0.25)
    json.dumps(document)


def test_the_table_stays_readable_in_80_columns() -> None:
    side = SideResult([Round(stats(12_345, 12.25, 118.5, errors=3), 1234.0)], rss_mb=123.0)
    result = BenchResult(
        duration_s=10,
        connections=64,
        rounds=3,
        threads=1,
        app_cpus=[0],
        load_cpus=[1],
        variants=[
            VariantBench(
                "postgresql-jwt-mt",
                {"database": "postgresql"},
                endpoints=[EndpointResult(endpoint, side, side) for endpoint in ENDPOINTS],
                notes=["a [bracketed] note"],
            )
        ],
    )
    console = Console(width=80, record=True, file=io.StringIO())
    print_result(result, console)
    text = console.export_text()
    assert max(len(line) for line in text.splitlines()) <= 80
    assert "…" not in text
    for endpoint in ENDPOINTS:
        assert f"{endpoint.name} app" in text
        assert f"{endpoint.name} floor" in text
    assert "12,345" in text
    assert "118.50" in text
    assert "a [bracketed] note" in text


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


# --- a short real run ---------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("wrk") is None, reason=WRK_INSTALL_HINT)
@pytest.mark.skipif(not available("postgresql"), reason="apt-get install -y postgresql")
def test_bench_runs_end_to_end(tmp_path: Path) -> None:
    """It must work, not meet a number: every endpoint answered, by both servers, without errors."""
    out = tmp_path / "bench.json"
    result = runner.invoke(
        bench_app(),
        ["bench", "--duration", "1", "--connections", "8", "--json", str(out)],
    )
    assert result.exit_code == 0, result.output
    assert "app/floor" in result.output
    assert "cold start" in result.output
    document: dict[str, Any] = json.loads(out.read_text())
    assert document["settings"]["connections"] == 8
    assert document["settings"]["rounds"] == 3
    (variant,) = document["variants"]
    assert variant["answers"]["database"] == "postgresql"
    assert variant["answers"]["auth"] == "jwt"
    assert variant["notes"] == []  # the floor answers with the app's JSON shape
    assert 0 < variant["cold_start_s"]["app"] < 60
    assert 0 < variant["cold_start_s"]["floor"] < 60
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
        assert endpoint["ratio"] > 0
    assert {t["name"] for t in variant["targets"]} >= {"zero errors (app)"}
