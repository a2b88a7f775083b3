"""A throwaway MariaDB (or MySQL) server: mariadb-install-db into a temporary directory,
driven with the mariadb client (root over a private socket, the app's account over TCP)."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from urllib.parse import quote

from backforge.servers.base import (
    LOOPBACK,
    Service,
    check_name,
    find_binary,
    missing,
    output_or_raise,
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
        try:
            result = self._as_root("SELECT 1", timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            return False
        return result.returncode == 0 and result.stdout.strip() == "1"

    def after_first_start(self) -> None:
        account = sql_string(self.user)
        password = sql_string(self.password)
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
        output_or_raise(self._as_root("\n".join(statements), self.timeout), "creating users")
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
