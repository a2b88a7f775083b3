"""The request's database session, and the answer when the database can't serve the request."""

import logging
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlmodel.ext.asyncio.session import AsyncSession

from app.core.errors import DatabaseUnavailableError
from app.db.availability import is_unavailable

logger = logging.getLogger(__name__)


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """A session, once the session gate admits the request (waiting in arrival order).

    A database that can't serve now (down, restarting, saturated, or the gate's timeout) is a 503
    the client may retry, wherever it shows: here or in the route (the app's exception handler
    does the same for errors raised after this dependency has finished).
    """
    state = request.app.state
    try:
        async with state.session_gate(), state.session_factory() as session:
            yield session
    except Exception as exc:
        if not is_unavailable(exc):
            raise
        logger.warning("database unavailable: %r", exc)
        raise DatabaseUnavailableError from exc


SessionDep = Annotated[AsyncSession, Depends(get_session)]
