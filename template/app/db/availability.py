"""Tell "the database can't serve now" (503, retry) apart from a bug in a query (500).

A database that is down, restarting, unreachable, saturated or that dropped the connection
surfaces in many shapes: refused or reset sockets, the pool's timeout, SQLAlchemy's
`OperationalError`/`InterfaceError`, and plain `DBAPIError`s whose driver error names the cause
only by its code (asyncpg: "connection was closed in the middle of operation", "the database
system is starting up"). Errors that a retry cannot fix (syntax, missing tables, constraints) are
not unavailability.
"""

from sqlalchemy.exc import DBAPIError, InterfaceError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

# SQLSTATE classes: 08 connection exception, 53 insufficient resources, 57 operator
# intervention (shutdown, crash, starting up, statement timeout).
POSTGRES_UNAVAILABLE_CLASSES = ("08", "53", "57")
# MySQL/MariaDB error numbers: too many connections, shutdown in progress, aborted connection,
# lock wait timeout, query interrupted, connection killed, can't connect, unknown host, server
# gone away, lost connection, statement time limit.
MYSQL_UNAVAILABLE_CODES = frozenset(
    {1040, 1053, 1152, 1205, 1317, 1927, 2002, 2003, 2005, 2006, 2013, 2055, 3024, 4031}
)
SQLITE_UNAVAILABLE_MESSAGES = (
    "database is locked",
    "database table is locked",
    "unable to open database file",
    "disk i/o error",
)


def _causes(exc: BaseException) -> list[BaseException]:
    """`exc` and the exceptions it was raised from, outermost first (cycles cut)."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def _driver_says_unavailable(error: BaseException) -> bool:
    sqlstate = getattr(error, "sqlstate", None) or getattr(error, "pgcode", None)
    if isinstance(sqlstate, str):
        return sqlstate.startswith(POSTGRES_UNAVAILABLE_CLASSES)
    code = error.args[0] if error.args else None
    if isinstance(code, int):
        return code in MYSQL_UNAVAILABLE_CODES
    message = str(error).lower()
    return any(known in message for known in SQLITE_UNAVAILABLE_MESSAGES)


def is_unavailable(exc: BaseException) -> bool:
    """True when `exc` means the database can't serve now and a retry may succeed."""
    for error in _causes(exc):
        if isinstance(error, OSError | PoolTimeoutError):  # sockets, DNS, timeouts, the pool
            return True
        if isinstance(error, DBAPIError):
            if error.connection_invalidated or isinstance(error, InterfaceError):
                return True
            if error.orig is not None and any(
                _driver_says_unavailable(cause) for cause in _causes(error.orig)
            ):
                return True
    return False
