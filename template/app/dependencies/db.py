"""The request's database session, and the answer when the database can't serve the request."""

import logging
import socket
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlmodel.ext.asyncio.session import AsyncSession

from app.core.errors import ServiceUnavailableError

logger = logging.getLogger(__name__)

# What a database that is down, restarting, unreachable or saturated raises: a refused, reset or
# timed-out connection (also the session gate's timeout), a host that doesn't resolve, or the
# driver's operational errors. None is the caller's fault and a retry may succeed: 503, not 500.
UNAVAILABLE = (ConnectionError, TimeoutError, socket.gaierror, OperationalError, InterfaceError)


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    state = request.app.state
    try:
        async with state.session_gate(), state.session_factory() as session:
            yield session
    except UNAVAILABLE as exc:
        logger.warning("database unavailable: %r", exc)
        raise ServiceUnavailableError("the database is unavailable; retry shortly") from exc


SessionDep = Annotated[AsyncSession, Depends(get_session)]
