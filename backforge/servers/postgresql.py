"""A throwaway PostgreSQL server: initdb into a temporary directory, no fsync, driven with psql;
and a streaming standby of one (`pg_basebackup -R` over a physical replication slot)."""

from __future__ import annotations

import os
import pwd
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from backforge.servers.base import (
    LOOPBACK,
    Service,
    ServiceError,
    ServiceUnavailable,
    check_name,
    find_binary,
    missing,
    output_or_raise,
    refused_on_replica,
    run_client,
    run_setup,
    sibling_or_found,
)

UNPRIVILEGED_USER = "nobody"
"""Account that runs PostgreSQL when we are root: initdb and postgres refuse to run as root."""


@dataclass(frozen=True)
class PostgresTools:
    initdb: str
    postgres: str
    psql: str
    pg_basebackup: str | None
    """Needed only for a standby (`PostgreSQLStandbyService`)."""


def stat_statements_available(postgres: str) -> bool:
    """True when the server's library folder holds pg_stat_statements (a contrib module)."""
    binary = Path(postgres).resolve()
    candidates = [binary.parent.parent / "lib" / "pg_stat_statements.so"]
    candidates += [binary.parent.parent / "lib" / "postgresql" / "pg_stat_statements.so"]
    return any(candidate.is_file() for candidate in candidates)


INSTALL_HINT = "apt-get install -y postgresql"


def postgres_tools() -> PostgresTools:
    initdb = find_binary("initdb")
    postgres = sibling_or_found(initdb, "postgres") if initdb else None
    if initdb is None or postgres is None:
        raise missing("PostgreSQL server binaries (initdb, postgres) were", INSTALL_HINT)
    psql = sibling_or_found(initdb, "psql")
    if psql is None:
        raise missing("The PostgreSQL client psql was", "apt-get install -y postgresql-client")
    pg_basebackup = sibling_or_found(initdb, "pg_basebackup")
    return PostgresTools(initdb=initdb, postgres=postgres, psql=psql, pg_basebackup=pg_basebackup)


def unprivileged_account() -> tuple[int, int]:
    try:
        entry = pwd.getpwnam(UNPRIVILEGED_USER)
    except KeyError as exc:
        raise ServiceUnavailable(
            f"PostgreSQL refuses to run as root and there is no {UNPRIVILEGED_USER!r} user "
            f"to run it as. Create one (`useradd --system {UNPRIVILEGED_USER}`) "
            "or run backforge as a regular user."
        ) from exc
    return entry.pw_uid, entry.pw_gid


class PostgreSQLService(Service):
    kind = "postgresql"
    label = "PostgreSQL"
    stop_signal = signal.SIGINT  # "fast" shutdown: disconnect clients instead of waiting for them

    def __init__(self, *, user: str, password: str, timeout: float) -> None:
        self.tools = postgres_tools()
        self.account = unprivileged_account() if os.geteuid() == 0 else None
        super().__init__(user=user, password=password, timeout=timeout)
        self.data_dir = self.directory / "data"
        self.socket_dir = self.directory / "sockets"

    def popen_kwargs(self) -> dict[str, Any]:
        if self.account is None:
            return {}
        uid, gid = self.account
        return {"user": uid, "group": gid, "extra_groups": []}

    def _make_directories(self) -> None:
        self.socket_dir.mkdir()
        if self.account is not None:
            uid, gid = self.account
            for path in (self.directory, self.socket_dir):
                os.chown(path, uid, gid)

    def prepare(self) -> None:
        self._make_directories()
        password_file = self.directory / "superuser-password"
        password_file.write_text(self.password + "\n")
        password_file.chmod(0o600)
        if self.account is not None:
            uid, gid = self.account
            os.chown(password_file, uid, gid)
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
            run_setup(
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
            # A standby can be made of any server (PostgreSQLStandbyService): WAL for streaming
            # replication, senders for it, and read-only queries on the standby while it replays.
            "wal_level": "replica",
            "max_wal_senders": "10",
            "hot_standby": "on",
        }
        if stat_statements_available(self.tools.postgres):
            # Per-statement call counts: `backforge bench` reads database round trips from them.
            settings["shared_preload_libraries"] = "pg_stat_statements"
            settings["pg_stat_statements.track_utility"] = "on"
        command = [self.tools.postgres, "-D", str(self.data_dir)]
        for name, value in settings.items():
            command += ["-c", f"{name}={value}"]
        return command

    def client_env(self) -> dict[str, str]:
        """The environment of a client run: ours without PG* variables, plus the password."""
        env = {name: value for name, value in os.environ.items() if not name.startswith("PG")}
        env.update(PGPASSWORD=self.password, PGCONNECT_TIMEOUT="5")
        return env

    def _psql(
        self, statement: str, database: str, timeout: float
    ) -> subprocess.CompletedProcess[str]:
        env = self.client_env()
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
        return run_client(command, timeout=timeout, stdin_text=statement, env=env)

    def ping(self) -> bool:
        return self._answers("SELECT 1", "1")

    def _answers(self, query: str, expected: str) -> bool:
        """Whether `query` answers `expected` (one value); never raises."""
        try:
            result = self._psql(query, "postgres", timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            return False
        return result.returncode == 0 and result.stdout.strip() == expected

    def url(self, database: str | None) -> str:
        name = check_name(database or "postgres")
        credentials = f"{quote(self.user, safe='')}:{quote(self.password, safe='')}"
        return f"postgresql://{credentials}@{LOOPBACK}:{self.port}/{name}"

    def execute(self, statement: str, database: str | None) -> str:
        name = check_name(database or "postgres")
        result = self._psql(statement, name, timeout=self.timeout)
        return output_or_raise(result, f"psql on database {name!r}")

    def create_database(self, name: str) -> str:
        self.execute(f'CREATE DATABASE "{check_name(name)}"', None)
        return self.url(name)

    def drop_database(self, name: str) -> None:
        self.execute(f'DROP DATABASE IF EXISTS "{check_name(name)}" WITH (FORCE)', None)


class PostgreSQLStandbyService(PostgreSQLService):
    """A hot standby of `primary`, streaming its WAL over a physical replication slot.

    Its data directory is `pg_basebackup -R` of the primary (which writes `standby.signal` and
    `primary_conninfo`), taken over loopback with the primary's account (a superuser, so it has
    the REPLICATION attribute; initdb's pg_hba.conf lets it replicate from 127.0.0.1). It serves
    reads only; databases are created on the primary and appear here. Closing it drops its slot
    on the primary (when the primary still runs), so the primary does not keep WAL for it.
    """

    label = "PostgreSQL standby"

    def __init__(self, *, primary: PostgreSQLService, timeout: float) -> None:
        super().__init__(user=primary.user, password=primary.password, timeout=timeout)
        self.primary = primary
        self.slot = f"backforge_standby_{self.port}"

    def prepare(self) -> None:
        if self.tools.pg_basebackup is None:
            raise missing("The PostgreSQL tool pg_basebackup was", INSTALL_HINT)
        self._make_directories()
        command = [
            self.tools.pg_basebackup,
            f"--pgdata={self.data_dir}",
            f"--host={LOOPBACK}",
            f"--port={self.primary.port}",
            f"--username={self.user}",
            "--no-password",
            "--write-recovery-conf",
            "--wal-method=stream",
            "--create-slot",
            f"--slot={self.slot}",
            "--checkpoint=fast",
            "--no-sync",
        ]
        run_setup(
            command,
            what="pg_basebackup" + (f" (as user {UNPRIVILEGED_USER!r})" if self.account else ""),
            timeout=self.timeout,
            cwd=self.directory,
            env=self.client_env(),
            **self.popen_kwargs(),
        )

    def ping(self) -> bool:
        """Answers queries, in recovery (a standby, not a promoted server)."""
        return self._answers("SELECT pg_is_in_recovery()", "t")

    def create_database(self, name: str) -> str:
        raise refused_on_replica("create", name, "standby")

    def drop_database(self, name: str) -> None:
        raise refused_on_replica("drop", name, "standby")

    def catch_up(self, timeout: float) -> None:
        """Return once this standby has replayed all the WAL the primary has written so far."""
        target = self.primary.execute("SELECT pg_current_wal_insert_lsn()", None)
        check = f"SELECT pg_last_wal_replay_lsn() >= '{target}'::pg_lsn"
        deadline = time.monotonic() + timeout
        while True:
            if self.execute(check, None) == "t":
                return
            if time.monotonic() > deadline:
                status = self.execute(
                    "SELECT pg_last_wal_replay_lsn(), (SELECT status FROM pg_stat_wal_receiver)",
                    None,
                )
                raise ServiceError(
                    f"{self.label} on {LOOPBACK}:{self.port} did not replay the primary's WAL "
                    f"up to {target} within {timeout:g} s (replayed, receiver: {status})"
                )
            time.sleep(0.02)

    def close(self) -> None:
        try:
            super().close()
        finally:
            if self.primary.running:
                self._drop_slot()

    def _drop_slot(self) -> None:
        """Drop the slot once the primary's sender has seen this standby go (it lags a little)."""
        # The slot's name is ours: a fixed prefix and a port number.
        where = f"FROM pg_replication_slots WHERE slot_name = '{self.slot}'"
        drop = f"SELECT count(pg_drop_replication_slot(slot_name)) {where} AND NOT active"
        left = f"SELECT count(*) {where}"
        deadline = time.monotonic() + self.timeout
        try:
            while True:
                self.primary.execute(drop, None)
                if self.primary.execute(left, None) == "0" or time.monotonic() > deadline:
                    return
                time.sleep(0.05)
        except ServiceError:  # the primary went away meanwhile: its slots go with it
            return
