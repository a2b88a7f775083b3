"""Work a new process would otherwise do on its first requests, done while it starts.

A fresh worker's first GET item took about 70 ms against a steady 2 ms: anyio imported its
asyncio backend (the first cancel scope FastAPI's dependency solver opens), FastAPI built the
routes of every included router (on the first request it matched), read the endpoint's source
lines for its error context (compiling the tokenizer's patterns), and each engine opened its first
connection and asked the server its version and settings. `warm_up` does all of it in the
lifespan, before the first request is accepted.

Best effort and bounded: a database that is down or never answers is logged and delays the start
by at most READY_TIMEOUT_SECONDS (the bound /ready's checks have); the app starts, and requests
answer 503 until the database is back, as they would without the warm-up.
"""

import asyncio
import inspect
import logging

import anyio
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from sqlalchemy.orm import configure_mappers

from app.db.health import ping

logger = logging.getLogger(__name__)


async def warm_up(app: FastAPI) -> None:
    anyio.current_time()  # imports anyio's asyncio backend (some 20 ms of modules)
    for _context in iter_route_contexts(app.routes):  # builds each included router's routes
        pass
    inspect.getsourcelines(warm_up)  # what FastAPI does to an endpoint on its first call
    configure_mappers()
    engines = (app.state.read_engine, app.state.engine)
    try:
        async with asyncio.timeout(app.state.settings.ready_timeout_seconds):
            async with asyncio.TaskGroup() as group:
                for engine in engines:  # each keeps its connection in its pool
                    group.create_task(ping(engine))
    except (TimeoutError, ExceptionGroup) as exc:
        logger.warning("the database did not answer at startup; it is connected on demand: %r", exc)
