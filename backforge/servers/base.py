"""What every throwaway server shares: finding binaries, free ports, running clients, and the
`Service` base class that starts a server under a mirakuru executor and tears it down.

A server kind (postgresql.py, mariadb.py, redis.py) subclasses `Service` and says how to
prepare its data directory, its command line, how to ping it and how to make a database.
"""

from __future__ import annotations

import contextlib
import logging
import os
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
from pathlib import Path
from typing import Any, ClassVar, Literal, TypeAlias

import psutil
from mirakuru.exceptions import (
    AlreadyRunning,
    ProcessExitedWithError,
    ProcessFinishedWithError,
    TimeoutExpired,
)

from backforge.errors import tail_lines
from backforge.executors import TCPExecutor

log = logging.getLogger(__name__)

ServiceKind: TypeAlias = Literal["postgresql", "mysql", "redis"]
"""The server kinds, for the type checker; `backforge.servers.SERVERS` has one record per kind."""

LOOPBACK = "127.0.0.1"
DEFAULT_USER = "backforge"
DEFAULT_PASSWORD = "secret"  # noqa: S105 - throwaway servers that listen on loopback only
START_TIMEOUT = 60.0
"""Seconds a server gets to answer a query after its process starts (and to stop)."""

UNPRIVILEGED_USER = "nobody"
"""Account that runs PostgreSQL when we are root: initdb and postgres refuse to run as root."""

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


class ServiceUnavailable(RuntimeError):
    """A server or client binary is not installed; the message says what to install."""


class ServiceError(RuntimeError):
    """A server failed to start (the message carries its log tail) or a client command failed."""


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


def missing(what: str, hint: str) -> ServiceUnavailable:
    """`what` is not installed: say where it was looked for and the command that installs it."""
    return ServiceUnavailable(
        f"{what} not found on PATH or in {', '.join(FALLBACK_BIN_DIRS)}. "
        f"Install it with `{hint}` (Debian/Ubuntu), "
        f"or put its directory on PATH."
    )


def sibling_or_found(anchor: str, name: str) -> str | None:
    """`name` from the directory of `anchor` (so versions match), else from the usual search."""
    sibling = Path(anchor).resolve().parent / name
    if sibling.is_file() and os.access(sibling, os.X_OK):
        return str(sibling)
    return find_binary(name)


def free_port(host: str = LOOPBACK) -> int:
    """A TCP port on `host` that nothing listens on right now (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def check_name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise ValueError(
            f"invalid database name {name!r}: use letters, digits and underscores, "
            "starting with a letter or underscore, at most 63 characters"
        )
    return name


def check_password(password: str) -> str:
    if not password or any(char in password for char in "\0\r\n"):
        raise ValueError("the password must be non-empty and fit on one line")
    return password


def refused_on_replica(action: str, name: str, replica: str) -> ServiceError:
    """Databases are created and dropped on the primary, never on its read-only `replica`."""
    return ServiceError(
        f"cannot {action} database {name!r} on a {replica}, which is read-only: {action} it on "
        f"the primary; the {replica} replays it"
    )


def sql_string(value: str) -> str:
    """A MariaDB string literal (backslash escapes are on in the default sql_mode)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


def processes_in(directory: Path) -> list[int]:
    """Processes working inside `directory`: servers chdir into their data directory, and so
    do their children, which may sit in sessions of their own (PostgreSQL's do)."""
    found: list[int] = []
    for process in psutil.process_iter():
        if process.pid == os.getpid():
            continue
        try:
            cwd = Path(process.cwd())
        except (psutil.Error, OSError):  # gone, or not ours to inspect
            continue
        if cwd == directory or directory in cwd.parents:
            found.append(process.pid)
    return found


def log_tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return tail_lines(text, lines) or "(empty log)"


def run_client(
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


def output_or_raise(result: subprocess.CompletedProcess[str], what: str) -> str:
    if result.returncode != 0:
        detail = (result.stderr.strip() or result.stdout.strip())[-4000:]
        raise ServiceError(f"{what} failed (exit code {result.returncode}): {detail}")
    return result.stdout.strip()


def run_setup(command: Sequence[str], *, what: str, timeout: float, **popen_kwargs: Any) -> None:
    """Run a one-shot setup command (initdb, mariadb-install-db); raise with its output."""
    try:
        result = run_client(command, timeout=timeout, **popen_kwargs)
    except subprocess.TimeoutExpired as exc:
        raise ServiceError(
            f"{what} did not finish within {timeout:g} s: {shlex.join(command)}"
        ) from exc
    if result.returncode != 0:
        output = tail_lines(result.stdout + result.stderr, 40)
        raise ServiceError(
            f"{what} failed (exit code {result.returncode}): {shlex.join(command)}\n{output}"
        )


class ServerExecutor(TCPExecutor):
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


class Service(ABC):
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
        self._executor: ServerExecutor | None = None
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
                executor = ServerExecutor(
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
            f"Last lines of the server log:\n{log_tail(self.log_path)}"
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
                for pid in processes_in(self.directory):
                    log.warning("killing leftover process %d of %s", pid, self.label)
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
            finally:
                shutil.rmtree(self.directory, ignore_errors=True)
