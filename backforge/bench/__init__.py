"""`backforge bench`: the rendered app against a hand-written floor, side by side.

For each variant (default ``database=postgresql,auth=jwt``) the run:

1. renders the project and installs it (`uv sync`, sharing uv's cache);
2. starts a throwaway PostgreSQL (`backforge.servers`), migrates (`alembic upgrade heads`) and
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

from backforge.bench.processes import BenchError, CpuLayout, cpu_seconds, pinned, rss_mb
from backforge.bench.report import print_result
from backforge.bench.results import (
    ENDPOINTS,
    BenchResult,
    Endpoint,
    EndpointResult,
    Round,
    SideResult,
    Target,
    VariantBench,
    write_json,
)
from backforge.bench.run import (
    BENCHMARKS_DIR,
    DEFAULT_CONNECTIONS,
    DEFAULT_DURATION,
    DEFAULT_ROUNDS,
    DEFAULT_SET,
    run_bench,
)
from backforge.bench.wrk import WRK_INSTALL_HINT, WrkNotFound, WrkStats, find_wrk, parse_wrk

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
    "CpuLayout",
    "Endpoint",
    "EndpointResult",
    "Round",
    "SideResult",
    "Target",
    "VariantBench",
    "WrkNotFound",
    "WrkStats",
    "cpu_seconds",
    "find_wrk",
    "parse_wrk",
    "pinned",
    "print_result",
    "rss_mb",
    "run_bench",
    "write_json",
]
