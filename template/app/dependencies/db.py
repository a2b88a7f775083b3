"""The request's database session, and the answer when the database can't serve the request.

Plain reads (GET and HEAD) get a session of the autocommit engine: no BEGIN/ROLLBACK around
their statements. Every other method gets a transaction, and so does a read route that declares
`dependencies=[InTransaction]` (one that streams through a server-side cursor, for example).
A streaming export also declares `ExportSlot`: at most `EXPORT_CONCURRENCY` stream at once.
"""

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import Depends, Request
from sqlmodel.ext.asyncio.session import AsyncSession

from app.core.errors import DatabaseUnavailableError, TooManyExportsError
from app.db.availability import is_unavailable

logger = logging.getLogger(__name__)

READ_METHODS = frozenset({"GET", "HEAD"})
_IN_TRANSACTION = "app.in_transaction"


async def in_transaction(request: Request) -> None:
    """Mark a read route whose session must be a transaction (route dependencies run first)."""
    request.scope[_IN_TRANSACTION] = True


InTransaction = Depends(in_transaction)


async def export_slot(request: Request) -> AsyncIterator[None]:
    """Hold one of the process's export slots until the response has streamed; with none free,
    a 503 at once (before the export asks for a session)."""
    slots = request.app.state.export_slots
    if not slots.try_acquire():
        raise TooManyExportsError(slots.size)
    try:
        yield
    finally:
        slots.release()


ExportSlot = Depends(export_slot)


@asynccontextmanager
async def open_session(request: Request) -> AsyncIterator[AsyncSession]:
    """A session, once the session gate admits the request (waiting in arrival order).

    A database that can't serve now (down, restarting, saturated, or the gate's timeout) is a 503
    the client may retry, wherever it shows: here or in the route (the app's exception handler
    does the same for errors raised after this dependency has finished).

    For dependencies only: FastAPI shields their exit from cancellation, so the session is
    closed directly (`async with session` would close it in a task of its own, to shield it).
    """
    state = request.app.state
    reads = request.method in READ_METHODS and _IN_TRANSACTION not in request.scope
    factory = state.read_session_factory if reads else state.session_factory
    try:
        async with state.session_gate:
            session = factory()
            try:
                yield session
            finally:
                await session.close()
    except Exception as exc:
        if not is_unavailable(exc):
            raise
        logger.warning("database unavailable: %r", exc)
        raise DatabaseUnavailableError from exc


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    async with open_session(request) as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session)]
