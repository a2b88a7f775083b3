"""A throwaway PostgreSQL server: initdb into a temporary directory, no fsync, driven with psql."""

from __future__ import annotations

import os
import pwd
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from backforge.servers.base import (
    LOOPBACK,
    Service,
    ServiceUnavailable,
    check_name,
    find_binary,
    missing,
    output_or_raise,
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
    return PostgresTools(initdb=initdb, postgres=postgres, psql=psql)


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
        }
        if stat_statements_available(self.tools.postgres):
            # Per-statement call counts: `backforge bench` reads database round trips from them.
            settings["shared_preload_libraries"] = "pg_stat_statements"
            settings["pg_stat_statements.track_utility"] = "on"
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
        return run_client(command, timeout=timeout, stdin_text=statement, env=env)

    def ping(self) -> bool:
        try:
            result = self._psql("SELECT 1", "postgres", timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            return False
        return result.returncode == 0 and result.stdout.strip() == "1"

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
