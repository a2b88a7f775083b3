"""The request's database session, and the answer when the database can't serve the request.

Plain reads (GET and HEAD) get a session of the autocommit engine: no BEGIN/ROLLBACK around
their statements; with a read replica (DATABASE_READ_URL), the replica's when it may serve them
(app.db.replica), connected at once so that a replica that can't is skipped for the primary.
Every other method gets a transaction, and so does a read route that declares
`dependencies=[InTransaction]` (one that streams through a server-side cursor, for example).
A streaming export also declares `ExportSlot`: at most `EXPORT_CONCURRENCY` stream at once.

A request has one session (`SessionDep`, `request_session`), whichever dependencies ask for it,
closed by `SessionMiddleware` after the response; `open_session` gives a block one of its own.
"""

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlmodel.ext.asyncio.session import AsyncSession
from starlette.types import ASGIApp, Receive, Scope, Send

from app.core.errors import DatabaseUnavailableError, TooManyExportsError
from app.db.availability import is_unavailable
from app.db.session import SessionGate, connection_of

logger = logging.getLogger(__name__)

READ_METHODS = frozenset({"GET", "HEAD"})
_IN_TRANSACTION = "app.in_transaction"
_SESSION = "app.session"


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


class OpenedSession:
    """A session and the session gate's slot it holds, until `close`."""

    __slots__ = ("_gate", "session")

    def __init__(self, session: AsyncSession, gate: SessionGate) -> None:
        self.session = session
        self._gate = gate

    async def close(self) -> None:
        """Give the connection back (rolling back what was not committed) and free the slot.

        A session that never began a transaction (a read answered from the cache) or whose last
        one ended holds no connection: closing it would only cost a trip through SQLAlchemy's
        greenlet bridge.
        """
        try:
            if self.session.in_transaction():
                await self.session.close()
        finally:
            self._gate.release()


async def _open(request: Request) -> OpenedSession:
    """A session for `request` once the session gate admits it (waiting in arrival order).

    A database that can't serve now (down, restarting, saturated, or the gate's timeout) is a
    503 the client may retry (`DatabaseUnavailableError`); the app's exception handler answers
    the same for such an error raised later, in the route.
    """
    state = request.app.state
    reads = request.method in READ_METHODS and _IN_TRANSACTION not in request.scope
    factory = state.read_session_factory if reads else state.session_factory
    replica = state.replica  # None: no DATABASE_READ_URL (or SQLite)
    gate: SessionGate = state.session_gate
    try:
        if replica is not None:
            if reads:
                factory = await replica.factory(request)
            elif request.method not in READ_METHODS:
                await replica.writing(request)
        await gate.acquire()
        try:
            session = factory()
            if factory is not state.read_session_factory and reads:
                session = await _replica_or_primary(session, state)
        except BaseException:
            gate.release()
            raise
    except Exception as exc:
        _raise_if_unavailable(exc)
        raise
    return OpenedSession(session, gate)


def _raise_if_unavailable(exc: Exception) -> None:
    """Raise the 503 to answer instead of `exc` when it says the database can't serve now."""
    if is_unavailable(exc):
        logger.warning("database unavailable: %r", exc)
        raise DatabaseUnavailableError from exc


async def request_session(request: Request) -> AsyncSession:
    """The request's session (`SessionDep`): opened by the first dependency that asks for it,
    shared by every other one, and closed by `SessionMiddleware` once the response has been
    sent, a streamed one included, or the request failed.

    A plain dependency rather than one with `yield`: FastAPI enters and exits every dependency
    with `yield` through an exit stack and a cancel scope of its own, on every request.
    """
    try:
        opened: OpenedSession | None = request.scope[_SESSION]
    except KeyError:
        raise RuntimeError(
            "request_session needs app.dependencies.db.SessionMiddleware (create_app adds it)"
        ) from None
    if opened is None:
        opened = request.scope[_SESSION] = await _open(request)
    return opened.session


SessionDep = Annotated[AsyncSession, Depends(request_session)]


class SessionMiddleware:
    """Closes the session `request_session` opened for an HTTP request, after the response.

    The innermost middleware: an error the exception handlers turned into a response, or one
    that reaches the server, both pass here first. A session that can't be closed because the
    database went away meanwhile is logged: the response has been sent.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        scope[_SESSION] = None
        try:
            await self.app(scope, receive, send)
        finally:
            opened: OpenedSession | None = scope[_SESSION]
            if opened is not None:
                try:
                    await opened.close()
                except Exception as exc:
                    if not is_unavailable(exc):
                        raise
                    logger.warning("closing a session failed, the database is unavailable: %r", exc)


@asynccontextmanager
async def open_session(request: Request) -> AsyncIterator[AsyncSession]:
    """A session of its own for the block, rather than the request's (`SessionDep`): for work
    that must commit or fail apart from the request's own.
    """
    opened = await _open(request)
    try:
        yield opened.session
    except Exception as exc:
        _raise_if_unavailable(exc)
        raise
    finally:
        await opened.close()


async def _replica_or_primary(session: AsyncSession, state: Any) -> AsyncSession:
    """`session` (the replica's) once it holds a connection; if the replica can't give one,
    a session of the primary's read engine, and the replica is skipped until it is back."""
    try:
        await connection_of(session)
    except Exception as exc:
        await session.close()
        if not is_unavailable(exc):
            raise
        state.replica.monitor.failed(exc)
        primary: AsyncSession = state.read_session_factory()
        return primary
    return session
