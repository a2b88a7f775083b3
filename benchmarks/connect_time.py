"""How long opening one PostgreSQL connection takes: the median of a few asyncpg connects.

`backforge bench` runs it in the rendered project's environment (which has asyncpg) and prints
the milliseconds; the app opens its pool's first connection on its first request, so that time
belongs to the first request's allowance::

    <project>/.venv/bin/python benchmarks/connect_time.py postgresql://user:pw@127.0.0.1:5432/db
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time

import asyncpg  # type: ignore[import-untyped]

CONNECTS = 5


async def connect_ms(url: str, times: int = CONNECTS) -> float:
    taken: list[float] = []
    for _ in range(times):
        started = time.perf_counter()
        connection = await asyncpg.connect(url)
        taken.append((time.perf_counter() - started) * 1000)
        await connection.close()
    return statistics.median(taken)


if __name__ == "__main__":
    print(f"{asyncio.run(connect_ms(sys.argv[1])):.3f}")
