"""Throwaway PostgreSQL, MariaDB/MySQL and Redis servers on loopback.

`backforge check --tier full` runs every rendered project's own test suite against real
servers. This module starts them. Each server lives in its own temporary directory, listens on a
free port of 127.0.0.1 only, trades durability for speed (no fsync), and is torn down -- process
group killed, directory removed -- when its context exits, even on failure::

    with serve("postgresql") as pg:
        url = pg.create_database("app_test")  # postgresql://backforge:secret@127.0.0.1:PORT/...

    with ServerPool() as pool:  # one server per kind, started on first use, stopped at exit
        redis_url = pool.get("redis").url()
        replica = pool.standby()  # a streaming standby of pool.get("postgresql"), read-only
        replica.catch_up()  # everything written on the primary so far is visible on it
        pool.standby("mysql")  # a MariaDB replica of pool.get("mysql") (GTID, read_only)

Processes run under mirakuru executors, which wait for readiness against a deadline and kill the
whole process group on the way out. Readiness means the port accepts connections *and* a real
query answers. The servers are driven with their command-line clients (psql, mariadb) or a
redis-py, so no SQL driver is needed here. One module per kind (postgresql.py, mariadb.py,
redis.py) implements `base.Service`; this module holds the public handle, `Server`, and the pool.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Final, Literal, TypeAlias, TypeVar

from backforge.servers import mariadb, postgresql, redis
from backforge.servers.base import (
    DEFAULT_PASSWORD,
    DEFAULT_USER,
    FALLBACK_BIN_DIRS,
    LOOPBACK,
    START_TIMEOUT,
    Service,
    ServiceError,
    ServiceKind,
    ServiceUnavailable,
    check_name,
    check_password,
    find_binary,
    free_port,
)

__all__ = [
    "DEFAULT_PASSWORD",
    "DEFAULT_USER",
    "FALLBACK_BIN_DIRS",
    "INSTALL_HINTS",
    "KINDS",
    "LOOPBACK",
    "SERVERS",
    "START_TIMEOUT",
    "Server",
    "ServerKind",
    "ServerPool",
    "ServiceError",
    "ServiceKind",
    "ServiceUnavailable",
    "Standby",
    "StandbyKind",
    "available",
    "find_binary",
    "free_port",
    "serve",
    "start_server",
    "start_standby",
]


@dataclass(frozen=True)
class ServerKind:
    """Everything backforge knows about one kind of server. Adding a kind: its module (a
    `Service`, a tools lookup, an install hint), its name in `ServiceKind`, and one row in
    `SERVERS`."""

    service: type[Service]
    """The class that starts, drives and stops it."""
    tools: Callable[[], object]
    """Finds its binaries; raises ServiceUnavailable (with `install_hint`) when one is missing."""
    install_hint: str
    """The command that installs it (Debian/Ubuntu)."""


SERVERS: Final[Mapping[ServiceKind, ServerKind]] = {
    "postgresql": ServerKind(
        postgresql.PostgreSQLService, postgresql.postgres_tools, postgresql.INSTALL_HINT
    ),
    "mysql": ServerKind(mariadb.MariaDBService, mariadb.mysql_tools, mariadb.INSTALL_HINT),
    "redis": ServerKind(redis.RedisService, redis.redis_tools, redis.INSTALL_HINT),
}
"""One record per server kind."""

KINDS: Final[tuple[ServiceKind, ...]] = tuple(SERVERS)
INSTALL_HINTS: Final[Mapping[ServiceKind, str]] = {
    kind: record.install_hint for kind, record in SERVERS.items()
}


def available(kind: ServiceKind) -> bool:
    """Whether the binaries needed to start a `kind` server (and talk to it) are installed."""
    try:
        SERVERS[kind].tools()
    except ServiceUnavailable:
        return False
    return True


@dataclass(frozen=True, eq=False)
class Server:
    """A running (or deliberately stopped) throwaway server; connection details never change.

    For Redis, `user` and `password` are empty and database "names" map to numbers 1-15.
    """

    kind: ServiceKind
    host: str
    port: int
    user: str
    password: str = field(repr=False)
    _service: Service = field(repr=False)

    def url(self, database: str | None = None) -> str:
        """A plain URL: postgresql://u:p@127.0.0.1:PORT/DB, mysql://..., redis://127.0.0.1:PORT/N.

        Without `database`: PostgreSQL's `postgres` database, no database for MySQL, Redis db 0.
        """
        return self._service.url(database)

    def create_database(self, name: str) -> str:
        """Create an empty database (an unused db number for Redis); return its URL."""
        return self._service.create_database(name)

    def drop_database(self, name: str) -> None:
        """Drop the database, disconnecting its clients; a missing database is fine."""
        self._service.drop_database(name)

    def execute(self, statement: str, database: str | None = None) -> str:
        """Run SQL with psql/mariadb as the app's account (a Redis command for Redis).

        Returns the output: one row per line, tab-separated columns, no headers.
        """
        return self._service.execute(statement, database)

    def stop(self) -> None:
        """Shut the server down cleanly, keeping its data; the port then refuses connections."""
        self._service.stop()

    def start(self) -> None:
        """Bring a stopped server back on the same port with the same data."""
        self._service.start()

    def close(self) -> None:
        """Stop the server for good and remove its directory (the context managers do this)."""
        self._service.close()

    @property
    def running(self) -> bool:
        return self._service.running

    @property
    def pid(self) -> int | None:
        """The server's main process id while it runs."""
        return self._service.pid

    @property
    def directory(self) -> Path:
        """The temporary directory holding data, sockets and `log_path`."""
        return self._service.directory

    @property
    def log_path(self) -> Path:
        return self._service.log_path


StandbyKind: TypeAlias = Literal["postgresql", "mysql"]

K = TypeVar("K", bound=str)
S = TypeVar("S")
"""The server kinds a standby can be made of."""

_REPLICAS = (postgresql.PostgreSQLStandbyService, mariadb.MariaDBReplicaService)


@dataclass(frozen=True, eq=False)
class Standby(Server):
    """A read-only replica of `primary`, of its kind and with its account: a PostgreSQL hot
    standby streaming its WAL, or a MariaDB replica applying its binary log (GTIDs).

    It answers reads only: a write fails ("cannot execute ... in a read-only transaction";
    MariaDB: "... is running with the --read-only option"); `create_database`/`drop_database`
    raise ServiceError (make them on the primary, they are replayed here). `stop()`/`start()`
    take it down and bring it back on the same port; it catches up (PostgreSQL from its
    replication slot, MariaDB from its GTID position). `url(database)` names any database of
    the primary.
    """

    primary: Server = field(repr=False)

    def catch_up(self, timeout: float = START_TIMEOUT) -> None:
        """Wait until everything the primary has written so far is replayed here; raise
        ServiceError (saying what was replayed) when it is not within `timeout` seconds."""
        service = self._service
        if not isinstance(service, _REPLICAS):
            raise TypeError("a Standby handle drives a PostgreSQL standby or a MariaDB replica")
        service.catch_up(timeout)


def start_standby(primary: Server, *, timeout: float = START_TIMEOUT) -> Standby:
    """Start a read-only replica of a running PostgreSQL or MariaDB `primary`; the caller must
    `close()` it (a PostgreSQL standby before the primary, or its slot is left to the
    primary's teardown)."""
    service = primary._service
    standby: postgresql.PostgreSQLStandbyService | mariadb.MariaDBReplicaService
    if isinstance(service, _REPLICAS):
        raise ValueError(f"a standby needs a primary, not another standby ({primary.kind!r})")
    if isinstance(service, postgresql.PostgreSQLService):
        standby = postgresql.PostgreSQLStandbyService(primary=service, timeout=timeout)
    elif isinstance(service, mariadb.MariaDBService):
        standby = mariadb.MariaDBReplicaService(primary=service, timeout=timeout)
    else:
        raise ValueError(f"a standby needs a PostgreSQL or MariaDB primary, not {primary.kind!r}")
    standby.launch()
    return Standby(
        kind=primary.kind,
        host=LOOPBACK,
        port=standby.port,
        user=standby.user,
        password=standby.password,
        _service=standby,
        primary=primary,
    )


def start_server(
    kind: ServiceKind,
    *,
    user: str = DEFAULT_USER,
    password: str = DEFAULT_PASSWORD,
    timeout: float = START_TIMEOUT,
) -> Server:
    """Start a `kind` server and wait until it answers queries. The caller must `close()` it.

    Raises ServiceUnavailable when binaries are missing, ServiceError when the server does not
    come up (its log tail is in the message); neither leaves a process or a directory behind.
    """
    if kind not in SERVERS:
        raise ValueError(f"unknown server kind {kind!r}; expected one of {', '.join(KINDS)}")
    service = SERVERS[kind].service(
        user=check_name(user), password=check_password(password), timeout=timeout
    )
    service.launch()
    return Server(
        kind=kind,
        host=LOOPBACK,
        port=service.port,
        user=service.user,
        password=service.password,
        _service=service,
    )


@contextmanager
def serve(
    kind: ServiceKind,
    *,
    user: str = DEFAULT_USER,
    password: str = DEFAULT_PASSWORD,
    timeout: float = START_TIMEOUT,
) -> Iterator[Server]:
    """A started `kind` server for the duration of the block; torn down even on failure."""
    server = start_server(kind, user=user, password=password, timeout=timeout)
    try:
        yield server
    finally:
        server.close()


class ServerPool:
    """One server per kind for a whole run, each started on first `get`; all stopped at exit.

    Safe to share between threads. A kind that failed to start fails fast on later `get`s.
    """

    def __init__(
        self,
        *,
        user: str = DEFAULT_USER,
        password: str = DEFAULT_PASSWORD,
        timeout: float = START_TIMEOUT,
    ) -> None:
        self._user = user
        self._password = password
        self._timeout = timeout
        self._servers: dict[ServiceKind, Server] = {}
        self._failures: dict[ServiceKind, RuntimeError] = {}
        self._locks = {kind: threading.Lock() for kind in KINDS}
        self._closed = False
        self._standbys: dict[StandbyKind, Standby] = {}
        self._standby_failures: dict[StandbyKind, RuntimeError] = {}
        self._standby_lock = threading.Lock()

    def __enter__(self) -> ServerPool:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def get(self, kind: ServiceKind) -> Server:
        """The pool's `kind` server, started now if this is the first request for it."""
        if kind not in self._locks:
            raise ValueError(f"unknown server kind {kind!r}; expected one of {', '.join(KINDS)}")
        return self._start_once(
            self._locks[kind],
            self._servers,
            self._failures,
            kind,
            lambda: start_server(
                kind, user=self._user, password=self._password, timeout=self._timeout
            ),
        )

    def standby(self, kind: StandbyKind = "postgresql") -> Standby:
        """The pool's read-only replica of its `kind` server (both started now if need be): a
        streaming standby of PostgreSQL, a GTID replica of MariaDB.

        One per kind and pool; stopped at exit, before the primaries. A test that stops it must
        start it again (`Server.start`) before handing the pool on.
        """
        if kind not in ("postgresql", "mysql"):
            raise ValueError(f"no standby of a {kind!r} server: only postgresql and mysql")
        primary = self.get(kind)
        return self._start_once(
            self._standby_lock,
            self._standbys,
            self._standby_failures,
            kind,
            lambda: start_standby(primary, timeout=self._timeout),
        )

    def _start_once(
        self,
        lock: threading.Lock,
        started: dict[K, S],
        failures: dict[K, RuntimeError],
        kind: K,
        start: Callable[[], S],
    ) -> S:
        """`started[kind]`, started now under `lock` if need be; a start that failed is not tried
        again (its error is raised anew), and a closed pool starts nothing."""
        with lock:
            if self._closed:
                raise RuntimeError("this ServerPool is closed")
            found = started.get(kind)
            if found is not None:
                return found
            failure = failures.get(kind)
            if failure is not None:
                raise type(failure)(*failure.args) from failure
            try:
                found = start()
            except (ServiceUnavailable, ServiceError) as exc:
                failures[kind] = exc
                raise
            started[kind] = found
            return found

    @property
    def servers(self) -> dict[ServiceKind, Server]:
        """The servers started so far, by kind."""
        return dict(self._servers)

    def close(self) -> None:
        """Stop every server and remove its directory; later `get`s raise."""
        self._closed = True
        with self._standby_lock:
            standbys, self._standbys = self._standbys, {}
        for standby in standbys.values():
            standby.close()
        for kind in KINDS:
            with self._locks[kind]:
                server = self._servers.pop(kind, None)
            if server is not None:
                server.close()
