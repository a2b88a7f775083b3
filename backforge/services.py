"""Throwaway PostgreSQL, MariaDB/MySQL and Redis servers on loopback.

`backforge check --tier full` runs every rendered project's own test suite against real
servers. This module starts them. Each server lives in its own temporary directory, listens on a
free port of 127.0.0.1 only, trades durability for speed (no fsync), and is torn down -- process
group killed, directory removed -- when its context exits, even on failure::

    with postgresql_server() as pg:
        url = pg.create_database("app_test")  # postgresql://backforge:secret@127.0.0.1:PORT/...

    with ServerPool() as pool:  # one server per kind, started on first use, stopped at exit
        redis_url = pool.get("redis").url()

Processes run under mirakuru executors, which wait for readiness against a deadline and kill the
whole process group on the way out. Readiness means the port accepts connections *and* a real
query answers. The servers are driven with their command-line clients (psql, mariadb) or a
few bytes of the Redis protocol, so no database driver is needed here.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pwd
import re
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Any, ClassVar, Literal, TypeAlias
from urllib.parse import quote

from mirakuru import TCPExecutor
from mirakuru.exceptions import (
    AlreadyRunning,
    ProcessExitedWithError,
    ProcessFinishedWithError,
    TimeoutExpired,
)

__all__ = [
    "DEFAULT_PASSWORD",
    "DEFAULT_USER",
    "FALLBACK_BIN_DIRS",
    "INSTALL_HINTS",
    "KINDS",
    "LOOPBACK",
    "START_TIMEOUT",
    "Server",
    "ServerPool",
    "ServiceError",
    "ServiceKind",
    "ServiceUnavailable",
    "available",
    "find_binary",
    "free_port",
    "mysql_server",
    "postgresql_server",
    "redis_server",
    "serve",
    "start_server",
]

log = logging.getLogger(__name__)

ServiceKind: TypeAlias = Literal["postgresql", "mysql", "redis"]
KINDS: tuple[ServiceKind, ...] = ("postgresql", "mysql", "redis")

LOOPBACK = "127.0.0.1"
DEFAULT_USER = "backforge"
DEFAULT_PASSWORD = "secret"  # noqa: S105 - throwaway servers that listen on loopback only
START_TIMEOUT = 60.0
"""Seconds a server gets to answer a query after its process starts (and to stop)."""

UNPRIVILEGED_USER = "nobody"
"""Account that runs PostgreSQL when we are root: initdb and postgres refuse to run as root."""

INSTALL_HINTS: dict[ServiceKind, str] = {
    "postgresql": "apt-get install -y postgresql",
    "mysql": "apt-get install -y mariadb-server",
    "redis": "apt-get install -y redis-server",
}

FALLBACK_BIN_DIRS: tuple[str, ...] = (
    "/usr/lib/postgresql/*/bin",  # Debian and Ubuntu keep PostgreSQL off PATH; newest first
    "/usr/pgsql-*/bin",  # PGDG packages on RHEL and Fedora
    "/usr/local/pgsql/bin",  # built from source
    "/usr/sbin",  # mariadbd, mysqld
    "/usr/local/sbin",
    "/usr/local/mysql/bin",
    "/usr/local/bin",
    "/usr/bin",
)
"""Where binaries are looked for when they are not on PATH (glob patterns allowed)."""

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
_REDIS_DATABASES = 16


class ServiceUnavailable(RuntimeError):
    """A server or client binary is not installed; the message says what to install."""


class ServiceError(RuntimeError):
    """A server failed to start (the message carries its log tail) or a client command failed."""


# --- finding binaries --------------------------------------------------------------------------


def _version_key(path: Path) -> tuple[int, ...]:
    return tuple(int(number) for number in re.findall(r"\d+", str(path)))


def _fallback_dirs() -> Iterator[Path]:
    for pattern in FALLBACK_BIN_DIRS:
        if any(char in pattern for char in "*?["):
            relative = pattern.lstrip("/")
            yield from sorted(Path("/").glob(relative), key=_version_key, reverse=True)
        else:
            yield Path(pattern)


def find_binary(*names: str) -> str | None:
    """Return the path of the first of `names` on PATH, else in FALLBACK_BIN_DIRS, else None."""
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    for directory in _fallback_dirs():
        for name in names:
            candidate = directory / name
            if candidate.is_file() and os.access(candidate, os.X_OK):
                return str(candidate)
    return None


def _missing(kind: ServiceKind, what: str, hint: str | None = None) -> ServiceUnavailable:
    return ServiceUnavailable(
        f"{what} not found on PATH or in {', '.join(FALLBACK_BIN_DIRS)}. "
        f"Install it with `{hint or INSTALL_HINTS[kind]}` (Debian/Ubuntu), "
        f"or put its directory on PATH."
    )


@dataclass(frozen=True)
class _PostgresTools:
    initdb: str
    postgres: str
    psql: str


@dataclass(frozen=True)
class _MySQLTools:
    install_db: str
    server: str
    client: str


@dataclass(frozen=True)
class _RedisTools:
    server: str


def _sibling_or_found(anchor: str, name: str) -> str | None:
    """`name` from the directory of `anchor` (so versions match), else from the usual search."""
    sibling = Path(anchor).resolve().parent / name
    if sibling.is_file() and os.access(sibling, os.X_OK):
        return str(sibling)
    return find_binary(name)


def _postgres_tools() -> _PostgresTools:
    initdb = find_binary("initdb")
    postgres = _sibling_or_found(initdb, "postgres") if initdb else None
    if initdb is None or postgres is None:
        raise _missing("postgresql", "PostgreSQL server binaries (initdb, postgres) were")
    psql = _sibling_or_found(initdb, "psql")
    if psql is None:
        raise _missing(
            "postgresql", "The PostgreSQL client psql was", "apt-get install -y postgresql-client"
        )
    return _PostgresTools(initdb=initdb, postgres=postgres, psql=psql)


def _mysql_tools() -> _MySQLTools:
    install_db = find_binary("mariadb-install-db", "mysql_install_db")
    server = find_binary("mariadbd", "mysqld")
    if install_db is None or server is None:
        raise _missing("mysql", "MariaDB server binaries (mariadb-install-db, mariadbd) were")
    client = find_binary("mariadb", "mysql")
    if client is None:
        raise _missing(
            "mysql", "The MariaDB client mariadb was", "apt-get install -y mariadb-client"
        )
    return _MySQLTools(install_db=install_db, server=server, client=client)


def _redis_tools() -> _RedisTools:
    server = find_binary("redis-server")
    if server is None:
        raise _missing("redis", "The Redis server redis-server was")
    return _RedisTools(server=server)


_TOOL_LOOKUPS: dict[ServiceKind, Callable[[], object]] = {
    "postgresql": _postgres_tools,
    "mysql": _mysql_tools,
    "redis": _redis_tools,
}


def available(kind: ServiceKind) -> bool:
    """Whether the binaries needed to start a `kind` server (and talk to it) are installed."""
    try:
        _TOOL_LOOKUPS[kind]()
    except ServiceUnavailable:
        return False
    return True


# --- small helpers ------------------------------------------------------------------------------


def free_port(host: str = LOOPBACK) -> int:
    """A TCP port on `host` that nothing listens on right now (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def _check_name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise ValueError(
            f"invalid database name {name!r}: use letters, digits and underscores, "
            "starting with a letter or underscore, at most 63 characters"
        )
    return name


def _check_password(password: str) -> str:
    if not password or any(char in password for char in "\0\r\n"):
        raise ValueError("the password must be non-empty and fit on one line")
    return password


def _sql_string(value: str) -> str:
    """A MariaDB string literal (backslash escapes are on in the default sql_mode)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


def _processes_in(directory: Path) -> list[int]:
    """Processes working inside `directory`: servers chdir into their data directory, and so
    do their children, which may sit in sessions of their own (PostgreSQL's do)."""
    found: list[int] = []
    proc = Path("/proc")
    if not proc.is_dir():
        return found
    for entry in proc.iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cwd = (entry / "cwd").readlink()
        except OSError:  # gone, or not ours to inspect
            continue
        if cwd == directory or directory in cwd.parents:
            found.append(int(entry.name))
    return found


def _tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:]) or "(empty log)"


def _run(
    command: Sequence[str],
    *,
    timeout: float,
    stdin_text: str | None = None,
    env: dict[str, str] | None = None,
    **popen_kwargs: Any,
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(command),
        input=stdin_text,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        **popen_kwargs,
    )


def _output_or_raise(result: subprocess.CompletedProcess[str], what: str) -> str:
    if result.returncode != 0:
        detail = (result.stderr.strip() or result.stdout.strip())[-4000:]
        raise ServiceError(f"{what} failed (exit code {result.returncode}): {detail}")
    return result.stdout.strip()


def _run_setup(command: Sequence[str], *, what: str, timeout: float, **popen_kwargs: Any) -> None:
    """Run a one-shot setup command (initdb, mariadb-install-db); raise with its output."""
    try:
        result = _run(command, timeout=timeout, **popen_kwargs)
    except subprocess.TimeoutExpired as exc:
        raise ServiceError(
            f"{what} did not finish within {timeout:g} s: {shlex.join(command)}"
        ) from exc
    if result.returncode != 0:
        output = "\n".join((result.stdout + result.stderr).splitlines()[-40:])
        raise ServiceError(
            f"{what} failed (exit code {result.returncode}): {shlex.join(command)}\n{output}"
        )


# --- the Redis protocol, just enough for PING, SAVE, SELECT and friends -------------------------

RedisReply: TypeAlias = "str | int | list[RedisReply] | None"


def _resp_encode(args: Sequence[str]) -> bytes:
    parts = [f"*{len(args)}\r\n".encode()]
    for arg in args:
        data = arg.encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)


def _resp_read(stream: IO[bytes]) -> RedisReply:
    line = stream.readline()
    if not line.endswith(b"\r\n"):
        raise ServiceError("redis closed the connection")
    prefix, body = line[:1], line[1:-2].decode(errors="replace")
    if prefix == b"+":
        return body
    if prefix == b"-":
        raise ServiceError(f"redis answered with an error: {body}")
    if prefix == b":":
        return int(body)
    if prefix == b"$":
        size = int(body)
        return None if size < 0 else stream.read(size + 2)[:-2].decode(errors="replace")
    if prefix == b"*":
        count = int(body)
        return None if count < 0 else [_resp_read(stream) for _ in range(count)]
    raise ServiceError(f"unexpected redis reply: {line!r}")


def _redis_call(port: int, *commands: Sequence[str], timeout: float = 5.0) -> list[RedisReply]:
    """Send `commands` in one pipeline on a fresh connection; return their replies."""
    with (
        socket.create_connection((LOOPBACK, port), timeout=timeout) as sock,
        sock.makefile("rb") as stream,
    ):
        sock.sendall(b"".join(_resp_encode(command) for command in commands))
        return [_resp_read(stream) for _ in commands]


def _format_reply(reply: RedisReply) -> str:
    if reply is None:
        return ""
    if isinstance(reply, list):
        return "\n".join(_format_reply(item) for item in reply)
    return str(reply)


# --- executors and services ---------------------------------------------------------------------


class _ServerExecutor(TCPExecutor):
    """Started once the port accepts connections and `ready()` (a real query) says yes.

    Fails fast, instead of waiting out the deadline, when the server process exits.
    """

    def __init__(
        self, command: list[str], *, port: int, ready: Callable[[], bool], **kwargs: Any
    ) -> None:
        super().__init__(command, host=LOOPBACK, port=port, **kwargs)
        self._ready = ready

    def after_start_check(self) -> bool:
        if self.process is not None:
            exit_code = self.process.poll()
            if exit_code is not None:
                raise ProcessExitedWithError(self, exit_code)
        return super().after_start_check() and self._ready()


class _Service(ABC):
    """One server process, its temporary directory and its lifecycle."""

    kind: ClassVar[ServiceKind]
    label: ClassVar[str]
    stop_signal: ClassVar[int] = signal.SIGTERM

    def __init__(self, *, user: str, password: str, timeout: float) -> None:
        self.user = user
        self.password = password
        self.timeout = timeout
        self.port = free_port()
        self.directory = Path(tempfile.mkdtemp(prefix=f"backforge-{self.kind}-"))
        self.log_path = self.directory / "server.log"
        self._executor: _ServerExecutor | None = None
        self._lock = threading.RLock()
        self._closed = False

    # what each kind provides

    @abstractmethod
    def prepare(self) -> None:
        """Create the data directory (runs once, before the first start)."""

    @abstractmethod
    def command(self) -> list[str]:
        """The server's command line (it must stay in the foreground)."""

    def popen_kwargs(self) -> dict[str, Any]:
        return {}

    @abstractmethod
    def ping(self) -> bool:
        """Whether a real query answers; never raises."""

    def after_first_start(self) -> None:
        """Create accounts and the like once the server first answers (default: nothing)."""
        return None

    def before_stop(self) -> None:
        """Make sure the data survives the stop (default: the server's own shutdown does)."""
        return None

    @abstractmethod
    def url(self, database: str | None) -> str: ...

    @abstractmethod
    def execute(self, statement: str, database: str | None) -> str: ...

    @abstractmethod
    def create_database(self, name: str) -> str: ...

    @abstractmethod
    def drop_database(self, name: str) -> None: ...

    # lifecycle

    @property
    def running(self) -> bool:
        executor = self._executor
        return executor is not None and executor.running()

    @property
    def pid(self) -> int | None:
        executor = self._executor
        if executor is None or executor.process is None or not executor.running():
            return None
        pid: int = executor.process.pid
        return pid

    def launch(self) -> None:
        """Prepare, start and bootstrap; on any failure leave no process and no directory."""
        try:
            self.prepare()
            self.start()
            self.after_first_start()
        except BaseException:
            self.close()
            raise

    def start(self) -> None:
        with self._lock:
            if self._closed:
                raise ServiceError(f"this {self.label} server was closed; start a new one")
            if self.running:
                return
            if self._executor is not None:  # it died on its own: collect what is left
                self._executor.kill()
                self._executor = None
            with self.log_path.open("ab") as server_log:  # the child keeps its own descriptor
                executor = _ServerExecutor(
                    self.command(),
                    port=self.port,
                    ready=self.ping,
                    timeout=self.timeout,
                    sleep=0.1,
                    stop_signal=self.stop_signal,
                    cwd=str(self.directory),
                    stdin=subprocess.DEVNULL,
                    stdout=server_log,
                    stderr=subprocess.STDOUT,
                    popen_kwargs=self.popen_kwargs(),
                )
                try:
                    executor.start()
                except AlreadyRunning as exc:
                    raise ServiceError(
                        f"cannot start {self.label}: {LOOPBACK}:{self.port} is already taken "
                        "by another process"
                    ) from exc
                except (TimeoutExpired, ProcessExitedWithError) as exc:
                    executor.kill()
                    raise self._start_error(exc) from exc
                except BaseException:
                    executor.kill()
                    raise
            self._executor = executor

    def _start_error(self, exc: TimeoutExpired | ProcessExitedWithError) -> ServiceError:
        if isinstance(exc, TimeoutExpired):
            problem = f"did not answer a query within {self.timeout:g} s"
        else:
            problem = f"exited during startup with code {exc.exit_code}"
        return ServiceError(
            f"{self.label} on {LOOPBACK}:{self.port} {problem}.\n"
            f"Command: {shlex.join(self.command())}\n"
            f"Last lines of the server log:\n{_tail(self.log_path)}"
        )

    def stop(self) -> None:
        with self._lock:
            executor, self._executor = self._executor, None
            if executor is None:
                return
            try:
                if executor.running():
                    self.before_stop()
                executor.stop()
            except ProcessFinishedWithError as exc:  # it is gone, with a complaint
                log.warning("%s exited with code %s when stopped", self.label, exc.exit_code)
            except BaseException:
                executor.kill()
                raise

    def close(self) -> None:
        """Stop (killing if need be) and remove the temporary directory. Never raises for that."""
        self._closed = True
        try:
            self.stop()
        except Exception:
            log.warning("%s did not stop cleanly and was killed", self.label, exc_info=True)
        finally:
            try:
                for pid in _processes_in(self.directory):
                    log.warning("killing leftover process %d of %s", pid, self.label)
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
            finally:
                shutil.rmtree(self.directory, ignore_errors=True)


class _PostgreSQL(_Service):
    kind = "postgresql"
    label = "PostgreSQL"
    stop_signal = signal.SIGINT  # "fast" shutdown: disconnect clients instead of waiting for them

    def __init__(self, *, user: str, password: str, timeout: float) -> None:
        self.tools = _postgres_tools()
        self.account = _unprivileged_account() if os.geteuid() == 0 else None
        super().__init__(user=user, password=password, timeout=timeout)
        self.data_dir = self.directory / "data"
        self.socket_dir = self.directory / "sockets"

    def popen_kwargs(self) -> dict[str, Any]:
        if self.account is None:
            return {}
        uid, gid = self.account
        return {"user": uid, "group": gid, "extra_groups": []}

    def prepare(self) -> None:
        self.socket_dir.mkdir()
        password_file = self.directory / "superuser-password"
        password_file.write_text(self.password + "\n")
        password_file.chmod(0o600)
        if self.account is not None:
            uid, gid = self.account
            for path in (self.directory, self.socket_dir, password_file):
                os.chown(path, uid, gid)
        initdb = [
            self.tools.initdb,
            f"--pgdata={self.data_dir}",
            f"--username={self.user}",
            f"--pwfile={password_file}",
            "--auth-local=trust",  # the socket directory is private to this server
            "--auth-host=scram-sha-256",
            "--encoding=UTF8",
            "--no-locale",
            "--no-sync",
            "--no-instructions",
        ]
        try:
            _run_setup(
                initdb,
                what="initdb" + (f" (as user {UNPRIVILEGED_USER!r})" if self.account else ""),
                timeout=self.timeout,
                cwd=self.directory,
                **self.popen_kwargs(),
            )
        finally:
            password_file.unlink(missing_ok=True)

    def command(self) -> list[str]:
        settings = {
            "listen_addresses": LOOPBACK,
            "port": str(self.port),
            "unix_socket_directories": str(self.socket_dir),
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "logging_collector": "off",
            "max_connections": "200",
        }
        command = [self.tools.postgres, "-D", str(self.data_dir)]
        for name, value in settings.items():
            command += ["-c", f"{name}={value}"]
        return command

    def _psql(
        self, statement: str, database: str, timeout: float
    ) -> subprocess.CompletedProcess[str]:
        env = {name: value for name, value in os.environ.items() if not name.startswith("PG")}
        env.update(PGPASSWORD=self.password, PGCONNECT_TIMEOUT="5")
        command = [
            self.tools.psql,
            "--no-psqlrc",
            "--quiet",
            "--no-align",
            "--tuples-only",
            "--set=ON_ERROR_STOP=1",
            f"--host={LOOPBACK}",
            f"--port={self.port}",
            f"--username={self.user}",
            f"--dbname={database}",
            "--file=-",
        ]
        return _run(command, timeout=timeout, stdin_text=statement, env=env)

    def ping(self) -> bool:
        try:
            result = self._psql("SELECT 1", "postgres", timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            return False
        return result.returncode == 0 and result.stdout.strip() == "1"

    def url(self, database: str | None) -> str:
        name = _check_name(database or "postgres")
        credentials = f"{quote(self.user, safe='')}:{quote(self.password, safe='')}"
        return f"postgresql://{credentials}@{LOOPBACK}:{self.port}/{name}"

    def execute(self, statement: str, database: str | None) -> str:
        name = _check_name(database or "postgres")
        result = self._psql(statement, name, timeout=self.timeout)
        return _output_or_raise(result, f"psql on database {name!r}")

    def create_database(self, name: str) -> str:
        self.execute(f'CREATE DATABASE "{_check_name(name)}"', None)
        return self.url(name)

    def drop_database(self, name: str) -> None:
        self.execute(f'DROP DATABASE IF EXISTS "{_check_name(name)}" WITH (FORCE)', None)


def _unprivileged_account() -> tuple[int, int]:
    try:
        entry = pwd.getpwnam(UNPRIVILEGED_USER)
    except KeyError as exc:
        raise ServiceUnavailable(
            f"PostgreSQL refuses to run as root and there is no {UNPRIVILEGED_USER!r} user "
            f"to run it as. Create one (`useradd --system {UNPRIVILEGED_USER}`) "
            "or run backforge as a regular user."
        ) from exc
    return entry.pw_uid, entry.pw_gid


class _MySQL(_Service):
    kind = "mysql"
    label = "MariaDB"

    def __init__(self, *, user: str, password: str, timeout: float) -> None:
        self.tools = _mysql_tools()
        self.as_root = os.geteuid() == 0
        super().__init__(user=user, password=password, timeout=timeout)
        self.data_dir = self.directory / "data"
        self.socket_path = self.directory / "mysqld.sock"

    def prepare(self) -> None:
        install_db = [
            self.tools.install_db,
            "--no-defaults",
            f"--datadir={self.data_dir}",
            "--auth-root-authentication-method=normal",
            "--skip-test-db",
            "--skip-name-resolve",
        ]
        if self.as_root:
            install_db.append("--user=root")
        _run_setup(install_db, what="mariadb-install-db", timeout=self.timeout, cwd=self.directory)

    def command(self) -> list[str]:
        command = [
            self.tools.server,
            "--no-defaults",
            f"--datadir={self.data_dir}",
            f"--socket={self.socket_path}",
            f"--pid-file={self.directory / 'mysqld.pid'}",
            f"--tmpdir={self.directory}",
            f"--port={self.port}",
            f"--bind-address={LOOPBACK}",
            "--skip-name-resolve",
            "--skip-log-bin",
            "--innodb-flush-log-at-trx-commit=0",
            "--innodb-doublewrite=0",
            "--loose-innodb-flush-method=nosync",
            "--innodb-buffer-pool-size=64M",
            "--character-set-server=utf8mb4",
            "--collation-server=utf8mb4_unicode_ci",
            "--max-connections=300",
        ]
        if self.as_root:
            command.append("--user=root")
        return command

    def _as_root(self, statement: str, timeout: float) -> subprocess.CompletedProcess[str]:
        """root over the private socket (root@localhost has no password, no TCP access)."""
        command = [
            self.tools.client,
            "--no-defaults",
            f"--socket={self.socket_path}",
            "--user=root",
            "--connect-timeout=5",
            "--batch",
            "--skip-column-names",
        ]
        return _run(command, timeout=timeout, stdin_text=statement)

    def _client(
        self, statement: str, database: str | None, timeout: float
    ) -> subprocess.CompletedProcess[str]:
        """The application's account over TCP, exactly as the app connects."""
        env = {name: value for name, value in os.environ.items() if not name.startswith("MYSQL")}
        env["MYSQL_PWD"] = self.password
        command = [
            self.tools.client,
            "--no-defaults",
            "--protocol=TCP",
            f"--host={LOOPBACK}",
            f"--port={self.port}",
            f"--user={self.user}",
            "--connect-timeout=5",
            "--batch",
            "--skip-column-names",
        ]
        if database:
            command.append(f"--database={database}")
        return _run(command, timeout=timeout, stdin_text=statement, env=env)

    def ping(self) -> bool:
        try:
            result = self._as_root("SELECT 1", timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            return False
        return result.returncode == 0 and result.stdout.strip() == "1"

    def after_first_start(self) -> None:
        account = _sql_string(self.user)
        password = _sql_string(self.password)
        statements = []
        for host in ("%", LOOPBACK, "localhost"):
            statements += [
                f"CREATE USER IF NOT EXISTS {account}@'{host}' IDENTIFIED BY {password};",
                f"GRANT ALL PRIVILEGES ON *.* TO {account}@'{host}' WITH GRANT OPTION;",
            ]
        statements += [
            "DROP USER IF EXISTS 'root'@'127.0.0.1', 'root'@'::1', ''@'localhost', ''@'%';",
            "FLUSH PRIVILEGES;",
        ]
        _output_or_raise(self._as_root("\n".join(statements), self.timeout), "creating users")
        self.execute("SELECT 1", None)  # the account works over TCP, as the app will use it

    def url(self, database: str | None) -> str:
        credentials = f"{quote(self.user, safe='')}:{quote(self.password, safe='')}"
        base = f"mysql://{credentials}@{LOOPBACK}:{self.port}"
        return f"{base}/{_check_name(database)}" if database else base

    def execute(self, statement: str, database: str | None) -> str:
        name = _check_name(database) if database else None
        result = self._client(statement, name, timeout=self.timeout)
        return _output_or_raise(result, "mariadb" + (f" on database {name!r}" if name else ""))

    def create_database(self, name: str) -> str:
        self.execute(
            f"CREATE DATABASE `{_check_name(name)}` "
            "CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci",
            None,
        )
        return self.url(name)

    def drop_database(self, name: str) -> None:
        self.execute(f"DROP DATABASE IF EXISTS `{_check_name(name)}`", None)


class _Redis(_Service):
    kind = "redis"
    label = "Redis"

    def __init__(self, *, user: str, password: str, timeout: float) -> None:
        self.tools = _redis_tools()
        # The rendered apps use plain redis://127.0.0.1:PORT/N URLs: no account, no password.
        super().__init__(user="", password="", timeout=timeout)
        self._numbers: dict[str, int] = {}

    def prepare(self) -> None:
        pass

    def command(self) -> list[str]:
        return [
            self.tools.server,
            "--port",
            str(self.port),
            "--bind",
            LOOPBACK,
            "--dir",
            str(self.directory),
            "--dbfilename",
            "dump.rdb",
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "no",
            "--databases",
            str(_REDIS_DATABASES),
        ]

    def ping(self) -> bool:
        try:
            return _redis_call(self.port, ["PING"], timeout=2) == ["PONG"]
        except (OSError, ServiceError):
            return False

    def before_stop(self) -> None:
        # No save points are configured (that would slow every test down), so write the
        # snapshot now: start() loads it and the data is back, as with the SQL servers.
        _redis_call(self.port, ["SAVE"], timeout=self.timeout)

    def _number(self, database: str | None) -> int:
        if database is None:
            return 0
        if database.isdigit() and int(database) < _REDIS_DATABASES:
            return int(database)
        try:
            return self._numbers[database]
        except KeyError:
            raise ValueError(
                f"unknown Redis database {database!r}: create_database() it first, "
                f"or use a number from 0 to {_REDIS_DATABASES - 1}"
            ) from None

    def url(self, database: str | None) -> str:
        return f"redis://{LOOPBACK}:{self.port}/{self._number(database)}"

    def execute(self, statement: str, database: str | None) -> str:
        number = self._number(database)
        replies = _redis_call(
            self.port, ["SELECT", str(number)], shlex.split(statement), timeout=self.timeout
        )
        return _format_reply(replies[-1])

    def create_database(self, name: str) -> str:
        with self._lock:
            if _check_name(name) in self._numbers:
                raise ServiceError(f"Redis database {name!r} already exists")
            taken = set(self._numbers.values())
            free = [n for n in range(1, _REDIS_DATABASES) if n not in taken]
            if not free:
                raise ServiceError(
                    f"all {_REDIS_DATABASES - 1} Redis databases are in use; drop one first"
                )
            _redis_call(self.port, ["SELECT", str(free[0])], ["FLUSHDB"], timeout=self.timeout)
            self._numbers[name] = free[0]
            return self.url(name)

    def drop_database(self, name: str) -> None:
        with self._lock:
            number = self._numbers.pop(_check_name(name), None)
            if number is not None:
                _redis_call(self.port, ["SELECT", str(number)], ["FLUSHDB"], timeout=self.timeout)


_SERVICES: dict[ServiceKind, type[_Service]] = {
    "postgresql": _PostgreSQL,
    "mysql": _MySQL,
    "redis": _Redis,
}


# --- the public handle --------------------------------------------------------------------------


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
    _service: _Service = field(repr=False)

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
    if kind not in _SERVICES:
        raise ValueError(f"unknown server kind {kind!r}; expected one of {', '.join(KINDS)}")
    service = _SERVICES[kind](
        user=_check_name(user), password=_check_password(password), timeout=timeout
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


def postgresql_server(
    *, user: str = DEFAULT_USER, password: str = DEFAULT_PASSWORD, timeout: float = START_TIMEOUT
) -> AbstractContextManager[Server]:
    """A throwaway PostgreSQL server (run as `nobody` when we are root)."""
    return serve("postgresql", user=user, password=password, timeout=timeout)


def mysql_server(
    *, user: str = DEFAULT_USER, password: str = DEFAULT_PASSWORD, timeout: float = START_TIMEOUT
) -> AbstractContextManager[Server]:
    """A throwaway MariaDB (or MySQL) server; `user` gets every privilege, with grant option."""
    return serve("mysql", user=user, password=password, timeout=timeout)


def redis_server(*, timeout: float = START_TIMEOUT) -> AbstractContextManager[Server]:
    """A throwaway Redis server without persistence except across stop()/start()."""
    return serve("redis", timeout=timeout)


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
        with self._locks[kind]:
            if self._closed:
                raise RuntimeError("this ServerPool is closed")
            server = self._servers.get(kind)
            if server is not None:
                return server
            failure = self._failures.get(kind)
            if failure is not None:
                raise type(failure)(*failure.args) from failure
            try:
                server = start_server(
                    kind, user=self._user, password=self._password, timeout=self._timeout
                )
            except (ServiceUnavailable, ServiceError) as exc:
                self._failures[kind] = exc
                raise
            self._servers[kind] = server
            return server

    @property
    def servers(self) -> dict[ServiceKind, Server]:
        """The servers started so far, by kind."""
        return dict(self._servers)

    def close(self) -> None:
        """Stop every server and remove its directory; later `get`s raise."""
        self._closed = True
        for kind in KINDS:
            with self._locks[kind]:
                server = self._servers.pop(kind, None)
            if server is not None:
                server.close()
