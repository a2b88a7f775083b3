"""A throwaway MariaDB (or MySQL) server: mariadb-install-db into a temporary directory,
driven with the mariadb client (root over a private socket, the app's account over TCP); and a
replica of one (GTID replication from the start of the primary's binary log, read-only)."""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from urllib.parse import quote

from backforge.servers.base import (
    LOOPBACK,
    Service,
    ServiceError,
    check_name,
    find_binary,
    missing,
    output_or_raise,
    refused_on_replica,
    run_client,
    run_setup,
    sql_string,
)


@dataclass(frozen=True)
class MySQLTools:
    install_db: str
    server: str
    client: str


INSTALL_HINT = "apt-get install -y mariadb-server"


def mysql_tools() -> MySQLTools:
    install_db = find_binary("mariadb-install-db", "mysql_install_db")
    server = find_binary("mariadbd", "mysqld")
    if install_db is None or server is None:
        raise missing("MariaDB server binaries (mariadb-install-db, mariadbd) were", INSTALL_HINT)
    client = find_binary("mariadb", "mysql")
    if client is None:
        raise missing("The MariaDB client mariadb was", "apt-get install -y mariadb-client")
    return MySQLTools(install_db=install_db, server=server, client=client)


class MariaDBService(Service):
    kind = "mysql"
    label = "MariaDB"

    def __init__(self, *, user: str, password: str, timeout: float) -> None:
        self.tools = mysql_tools()
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
        run_setup(install_db, what="mariadb-install-db", timeout=self.timeout, cwd=self.directory)

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
            *self.replication_options(),
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

    def replication_options(self) -> list[str]:
        """A binary log (not synced) and a server id unique on this machine (the port), so that
        a replica (`MariaDBReplicaService`) can be made of this server at any time: it replays
        the log from its start, every database made so far included."""
        return [
            f"--server-id={self.port}",
            f"--log-bin={self.directory / 'binlog'}",
            "--binlog-format=ROW",
            "--sync-binlog=0",
        ]

    def _as_root(
        self, statement: str, timeout: float, *, headers: bool = False
    ) -> subprocess.CompletedProcess[str]:
        """root over the private socket (root@localhost has no password, no TCP access);
        with `headers`, the first line of the output names the columns."""
        command = [
            self.tools.client,
            "--no-defaults",
            f"--socket={self.socket_path}",
            "--user=root",
            "--connect-timeout=5",
            "--batch",
        ]
        if not headers:
            command.append("--skip-column-names")
        return run_client(command, timeout=timeout, stdin_text=statement)

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
        return run_client(command, timeout=timeout, stdin_text=statement, env=env)

    def ping(self) -> bool:
        return self._answers("SELECT 1", "1")

    def _answers(self, query: str, expected: str) -> bool:
        """Whether `query`, run as root, answers `expected` (one value); never raises."""
        try:
            result = self._as_root(query, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            return False
        return result.returncode == 0 and result.stdout.strip() == expected

    def account_statements(self) -> list[str]:
        """The app's account (every privilege) from every address; no other account over TCP.
        Not written to the binary log: a replica makes accounts of its own."""
        account = sql_string(self.user)
        password = sql_string(self.password)
        statements = ["SET SESSION sql_log_bin = 0;"]
        for host in ("%", LOOPBACK, "localhost"):
            statements += [
                f"CREATE USER IF NOT EXISTS {account}@'{host}' IDENTIFIED BY {password};",
                f"GRANT ALL PRIVILEGES ON *.* TO {account}@'{host}' WITH GRANT OPTION;",
            ]
        statements += [
            "DROP USER IF EXISTS 'root'@'127.0.0.1', 'root'@'::1', ''@'localhost', ''@'%';",
            "FLUSH PRIVILEGES;",
        ]
        return statements

    def after_first_start(self) -> None:
        output_or_raise(
            self._as_root("\n".join(self.account_statements()), self.timeout), "creating users"
        )
        self.execute("SELECT 1", None)  # the account works over TCP, as the app will use it

    def url(self, database: str | None) -> str:
        credentials = f"{quote(self.user, safe='')}:{quote(self.password, safe='')}"
        base = f"mysql://{credentials}@{LOOPBACK}:{self.port}"
        return f"{base}/{check_name(database)}" if database else base

    def execute(self, statement: str, database: str | None) -> str:
        name = check_name(database) if database else None
        result = self._client(statement, name, timeout=self.timeout)
        return output_or_raise(result, "mariadb" + (f" on database {name!r}" if name else ""))

    def create_database(self, name: str) -> str:
        self.execute(
            f"CREATE DATABASE `{check_name(name)}` "
            "CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci",
            None,
        )
        return self.url(name)

    def drop_database(self, name: str) -> None:
        self.execute(f"DROP DATABASE IF EXISTS `{check_name(name)}`", None)


_GTID_POSITION = re.compile(r"(\d+-\d+-\d+)?(,\d+-\d+-\d+)*")
REPLICA_STATUS_FIELDS = (
    "Slave_IO_Running",
    "Slave_SQL_Running",
    "Last_IO_Error",
    "Last_SQL_Error",
    "Gtid_IO_Pos",
)
"""What a replica that does not catch up reports about itself (SHOW REPLICA STATUS)."""


class MariaDBReplicaService(MariaDBService):
    """A read-only replica of `primary`, replicating with GTIDs from the start of its binary log.

    A fresh server of its own (mariadb-install-db, server id = its port, `read_only`), whose
    replication threads connect to the primary over loopback with the primary's account (it has
    REPLICATION SLAVE). Every database and row of the primary is replayed here, those made
    before the replica started included. The app's account exists here with the primary's
    privileges but READ_ONLY ADMIN, so it reads, runs SHOW REPLICA STATUS and may pause the
    replication threads, but its writes fail as on a PostgreSQL standby. Replication resumes by
    itself after `stop()`/`start()` (the replica's connection settings are in its data).
    """

    label = "MariaDB replica"

    def __init__(self, *, primary: MariaDBService, timeout: float) -> None:
        super().__init__(user=primary.user, password=primary.password, timeout=timeout)
        self.primary = primary

    def replication_options(self) -> list[str]:
        return [
            f"--server-id={self.port}",
            "--skip-log-bin",
            f"--relay-log={self.directory / 'relay'}",
            "--read-only",
        ]

    def prepare(self) -> None:
        where = f"the {self.primary.label} on {LOOPBACK}:{self.primary.port}"
        try:
            log_bin = self.primary.execute("SELECT @@log_bin", None)
        except ServiceError as exc:
            raise ServiceError(f"cannot make a replica of {where}: {exc}") from exc
        if log_bin != "1":
            raise ServiceError(
                f"cannot make a replica of {where}: it has no binary log (log_bin is OFF) "
                "for a replica to follow"
            )
        super().prepare()

    def ping(self) -> bool:
        """Answers queries, read-only (a replica, not a server one can write to)."""
        return self._answers("SELECT @@read_only", "1")

    def account_statements(self) -> list[str]:
        revoke = [
            f"REVOKE READ_ONLY ADMIN ON *.* FROM {sql_string(self.user)}@'{host}';"
            for host in ("%", LOOPBACK, "localhost")
        ]
        *statements, flush = super().account_statements()
        return [*statements, *revoke, flush]

    def after_first_start(self) -> None:
        super().after_first_start()
        source = (
            f"MASTER_HOST={sql_string(LOOPBACK)}, MASTER_PORT={self.primary.port}, "
            f"MASTER_USER={sql_string(self.primary.user)}, "
            f"MASTER_PASSWORD={sql_string(self.primary.password)}, "
            "MASTER_USE_GTID=slave_pos, MASTER_CONNECT_RETRY=1"
        )
        statements = f"CHANGE MASTER TO {source};\nSTART REPLICA;"
        output_or_raise(self._as_root(statements, self.timeout), "starting replication")
        self.catch_up(self.timeout)

    def create_database(self, name: str) -> str:
        raise refused_on_replica("create", name, "replica")

    def drop_database(self, name: str) -> None:
        raise refused_on_replica("drop", name, "replica")

    def catch_up(self, timeout: float) -> None:
        """Return once this replica has applied everything the primary has logged so far."""
        target = self.primary.execute("SELECT @@gtid_binlog_pos", None)
        if not _GTID_POSITION.fullmatch(target):
            raise ServiceError(f"the primary's binary log position is not a GTID list: {target!r}")
        wait = f"SELECT MASTER_GTID_WAIT({sql_string(target)}, {timeout:g})"
        result = self._as_root(wait, timeout=timeout + 10)
        if output_or_raise(result, "waiting for the replica") == "0":
            return
        raise ServiceError(
            f"{self.label} on {LOOPBACK}:{self.port} did not apply the primary's binary log up "
            f"to {target} within {timeout:g} s ({self.replication_status()})"
        )

    def replication_status(self) -> str:
        """The replication threads' state and last errors, for a message."""
        result = self._as_root("SHOW REPLICA STATUS", timeout=10, headers=True)
        if result.returncode != 0:
            return f"SHOW REPLICA STATUS failed: {(result.stderr or result.stdout).strip()}"
        lines = result.stdout.splitlines()
        if len(lines) < 2:
            return "not replicating"
        row = dict(zip(lines[0].split("\t"), lines[1].split("\t"), strict=False))
        return "; ".join(f"{name}: {row.get(name, '?')}" for name in REPLICA_STATUS_FIELDS)
