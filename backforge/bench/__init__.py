"""`backforge bench`: the rendered app against a hand-written floor, side by side.

For each variant (default ``database=postgresql,auth=jwt`` and the same with ``features=cache``,
`DEFAULT_SET`) the run:

1. renders the project and installs it (`uv sync`, sharing uv's cache);
2. starts a throwaway PostgreSQL (`backforge.servers`), migrates (`alembic upgrade heads`) and
   seeds it: one user registered through the API, 1,000 items owned by that user, a token;
3. serves the rendered app and the floor (`benchmarks/floor.py`: Starlette + asyncpg doing the
   same work per request) each with `--workers` uvicorn workers (uvloop, httptools, no access
   log), both pinned to one core per worker while wrk and PostgreSQL share the others (when
   cores are left for them), so that the server under test owns its cores;
4. for each connection count of `--connections`, and each endpoint, warms both apps up, then
   runs wrk against them in turn (A B A B ...) for a number of rounds, so that drift hits both
   alike, sampling each server's CPU time (its workers included) around every run and its
   resident memory after the endpoint's rounds;
5. counts each endpoint's database round trips per request for both servers: the statements
   PostgreSQL ran (pg_stat_statements, BEGIN/COMMIT/ROLLBACK included) over sequential requests;
   with Redis, the keyspace hits and misses around each of the app's measured rounds (the cache
   hit ratio);
6. before the load, times each server's launches (to the first `/health` 200) and the first
   GET item each launch serves, that request's steady latency on the warm server, and a new
   database connection (`benchmarks/connect_time.py`): the first-request target.

`--json` writes a record (format `RECORD_FORMAT`); `compare_records` (`--compare FILE`) sets it
beside a previous one: more round trips per request is a regression (exit 1).

`run_bench` returns a `BenchResult` (`to_dict()` is what `--json` writes); `print_result` prints
it; the command is `backforge.cli.bench`. Everything started -- servers, processes, temporary
folders -- is torn down, even on failure.
"""

from __future__ import annotations

from backforge.bench.processes import BenchError, CpuLayout, cpu_seconds, pinned, rss_mb
from backforge.bench.report import print_changes, print_result
from backforge.bench.results import (
    ENDPOINTS,
    TARGET_CONNECTIONS,
    BenchResult,
    Change,
    Endpoint,
    EndpointResult,
    Round,
    SideResult,
    Target,
    VariantBench,
    compare_records,
    write_json,
)
from backforge.bench.run import (
    BENCHMARKS_DIR,
    DEFAULT_CONNECTIONS,
    DEFAULT_DURATION,
    DEFAULT_ROUNDS,
    DEFAULT_SET,
    DEFAULT_WORKERS,
    run_bench,
)
from backforge.bench.wrk import WRK_INSTALL_HINT, WrkNotFound, WrkStats, find_wrk, parse_wrk

__all__ = [
    "BENCHMARKS_DIR",
    "DEFAULT_CONNECTIONS",
    "DEFAULT_DURATION",
    "DEFAULT_ROUNDS",
    "DEFAULT_SET",
    "DEFAULT_WORKERS",
    "ENDPOINTS",
    "TARGET_CONNECTIONS",
    "WRK_INSTALL_HINT",
    "BenchError",
    "BenchResult",
    "Change",
    "CpuLayout",
    "Endpoint",
    "EndpointResult",
    "Round",
    "SideResult",
    "Target",
    "VariantBench",
    "WrkNotFound",
    "WrkStats",
    "compare_records",
    "cpu_seconds",
    "find_wrk",
    "parse_wrk",
    "pinned",
    "print_changes",
    "print_result",
    "rss_mb",
    "run_bench",
    "write_json",
]
