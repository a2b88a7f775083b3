"""Work a new process would otherwise do on its first requests, done while it starts.

A fresh worker's first GET item took about 70 ms against a steady 2 ms: anyio imported its
asyncio backend (the first cancel scope FastAPI's dependency solver opens), FastAPI built the
routes of every included router (on the first request it matched), read the endpoint's source
lines for its error context (compiling the tokenizer's patterns), and each engine opened its first
connection and asked the server its version and settings. `warm_up` does all of it in the
lifespan, before the first request is accepted.

With auth, it also runs `lookups` (the lookups that tell who calls, for ids nobody has) on each
engine that answered: every authenticated request runs them, and a new process's first one
otherwise compiled their SQL (SQLAlchemy's cache is per engine) and prepared it on PostgreSQL's
connection, about 3 of the 9 ms it took with every feature. A route's own statements are still
compiled by its first request.

Best effort and bounded: the connections are opened by running the readiness checks (the
database's and, in a project with Redis, Redis's: its first command opens the pool's first
connection) plus the same check on the read engine (and the read replica's lag check, with
DATABASE_READ_URL), concurrently, each within
READY_TIMEOUT_SECONDS as /ready runs them. A dependency that is down or never answers is logged
and delays the start by at most that; the app starts, and requests answer 503 until it is back,
as they would without the warm-up.
"""

import inspect
import logging
from collections.abc import Awaitable, Callable
from functools import partial

import anyio
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlalchemy.orm import configure_mappers
from sqlmodel.ext.asyncio.session import AsyncSession

from app.db.health import ping
from app.services.health import run_checks

logger = logging.getLogger(__name__)

Lookups = Callable[[AsyncSession], Awaitable[None]]


async def warm_up(app: FastAPI, lookups: Lookups | None = None) -> None:
    anyio.current_time()  # imports anyio's asyncio backend (some 10 to 20 ms of modules)
    for _context in iter_route_contexts(app.routes):  # builds each included router's routes
        pass
    inspect.getsourcelines(warm_up)  # what FastAPI does to an endpoint on its first call
    configure_mappers()
    state = app.state
    seconds = state.settings.ready_timeout_seconds
    checks = {"read database": partial(ping, state.read_engine), **state.readiness_checks}
    factories = {"database": state.session_factory, "read database": state.read_session_factory}
    replica = state.replica  # None: no DATABASE_READ_URL (or SQLite)
    if replica is not None:
        checks["read replica"] = replica.monitor.check  # logs a replica it will skip
        factories["read replica"] = replica.replica
    results = await run_checks(checks, seconds=seconds)
    down = [name for name, result in results.items() if result != "ok"]
    if down:
        logger.warning("started without %s: connected on demand", ", ".join(down))
    if lookups is not None:
        runs = {
            f"lookups on the {name}": partial(_look_up, factory, lookups)
            for name, factory in factories.items()
            if results[name] == "ok"
        }
        await run_checks(runs, seconds=seconds)  # a failure is logged; requests will tell


async def _look_up(factory: async_sessionmaker[AsyncSession], lookups: Lookups) -> None:
    async with factory() as session:
        await lookups(session)
