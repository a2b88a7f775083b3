"""backforge.servers against real servers: no mocks, every server is a real process.

Each kind runs create/query/drop through its own command-line client, survives stop()/start()
with its data, and leaves neither process nor directory behind. MariaDB and Redis tests skip
(saying what to install) when their binaries are absent; PostgreSQL is required.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from backforge import servers
from backforge.servers import (
    KINDS,
    Server,
    ServerPool,
    ServiceError,
    ServiceKind,
    ServiceUnavailable,
    Standby,
    StandbyKind,
    available,
    find_binary,
    mariadb,
    serve,
    start_standby,
)

SKIP_REASONS: dict[ServiceKind, str] = {
    "mysql": "MariaDB/MySQL binaries not found; apt-get install -y mariadb-server",
    "redis": "redis-server not found; apt-get install -y redis-server",
}


def _kind(kind: ServiceKind) -> object:
    reason = SKIP_REASONS.get(kind)
    marks = [pytest.mark.skipif(not available(kind), reason=reason)] if reason else []
    return pytest.param(kind, marks=marks, id=kind)


ALL_KINDS = [_kind(kind) for kind in KINDS]
SQL_KINDS = [_kind("postgresql"), _kind("mysql")]
needs_redis = pytest.mark.skipif(not available("redis"), reason=SKIP_REASONS["redis"])


@pytest.fixture(scope="module")
def pool() -> Iterator[ServerPool]:
    with ServerPool() as servers:
        yield servers


def _unique() -> str:
    return f"t_{uuid.uuid4().hex[:12]}"


# --- the command-line clients, driven from the URL the server handed out ------------------------


def _client(url: str, statement: str) -> subprocess.CompletedProcess[str]:
    """Run `statement` against `url` with psql, mariadb or redis-cli."""
    parts = urlsplit(url)
    if parts.scheme == "postgresql":
        psql = find_binary("psql")
        assert psql is not None
        command = [psql, "--no-psqlrc", "-tA", "-v", "ON_ERROR_STOP=1", url, "-c", statement]
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        return subprocess.run(command, capture_output=True, text=True, timeout=30, env=env)
    if parts.scheme == "mysql":
        mariadb = find_binary("mariadb", "mysql")
        assert mariadb is not None
        command = [
            mariadb,
            "--no-defaults",
            "--protocol=TCP",
            f"--host={parts.hostname}",
            f"--port={parts.port}",
            f"--user={unquote(parts.username or '')}",
            "--batch",
            "--skip-column-names",
            "-e",
            statement,
        ]
        database = parts.path.lstrip("/")
        if database:
            command.append(database)
        env = dict(os.environ, MYSQL_PWD=unquote(parts.password or ""))
        return subprocess.run(command, capture_output=True, text=True, timeout=30, env=env)
    redis_cli = find_binary("redis-cli")
    if redis_cli is None:
        pytest.skip("redis-cli not found; apt-get install -y redis-tools")
    command = [redis_cli, "-u", url, *statement.split()]
    return subprocess.run(command, capture_output=True, text=True, timeout=30)


def _query(url: str, statement: str) -> str:
    result = _client(url, statement)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def _processes_using(directory: Path) -> list[int]:
    """Processes whose command line names `directory` or whose working directory is in it."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            cwd = str((entry / "cwd").readlink())
        except OSError:
            continue
        if str(directory) in cmdline or cwd.startswith(str(directory)):
            found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _refuses(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            return False
    except ConnectionRefusedError:
        return True


# --- create, query, drop ------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_create_database_query_it_with_the_client_and_drop_it(
    pool: ServerPool, kind: ServiceKind
) -> None:
    server = pool.get(kind)
    name = _unique()
    url = server.create_database(name)

    if kind == "redis":
        assert re.fullmatch(rf"redis://127\.0\.0\.1:{server.port}/([1-9]|1[0-5])", url)
        assert _query(url, "SET greeting hello") == "OK"
        assert _query(url, "GET greeting") == "hello"
        assert _query(server.url(), "EXISTS greeting") == "0"  # db 0 is another database
        server.drop_database(name)
        assert _query(url, "EXISTS greeting") == "0"  # flushed
        with pytest.raises(ValueError, match="unknown Redis database"):
            server.url(name)
        return

    assert url == f"{kind}://backforge:secret@127.0.0.1:{server.port}/{name}"
    current = "SELECT current_database()" if kind == "postgresql" else "SELECT DATABASE()"
    assert _query(url, current) == name
    server.drop_database(name)
    after = _client(url, current)
    assert after.returncode != 0
    assert name in after.stderr
    assert re.search("does not exist|Unknown database", after.stderr)
    server.drop_database(name)  # dropping a missing database is fine


@pytest.mark.parametrize("kind", SQL_KINDS)
def test_creating_an_existing_database_fails_loudly(pool: ServerPool, kind: ServiceKind) -> None:
    server = pool.get(kind)
    name = _unique()
    server.create_database(name)
    try:
        with pytest.raises(ServiceError, match="exists"):
            server.create_database(name)
    finally:
        server.drop_database(name)


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_database_names_are_checked(pool: ServerPool, kind: ServiceKind) -> None:
    server = pool.get(kind)
    for bad in ('x"; DROP DATABASE postgres; --', "with space", "9starts_with_digit", "a" * 64):
        with pytest.raises(ValueError, match="invalid database name"):
            server.create_database(bad)


def test_default_urls(pool: ServerPool) -> None:
    pg = pool.get("postgresql")
    assert pg.url() == f"postgresql://backforge:secret@127.0.0.1:{pg.port}/postgres"
    assert (pg.kind, pg.host, pg.user, pg.password) == (
        "postgresql",
        "127.0.0.1",
        "backforge",
        "secret",
    )
    assert "secret" not in repr(pg)
    if available("mysql"):
        my = pool.get("mysql")
        assert my.url() == f"mysql://backforge:secret@127.0.0.1:{my.port}"
    if available("redis"):
        redis = pool.get("redis")
        assert redis.url() == f"redis://127.0.0.1:{redis.port}/0"
        assert redis.url("7") == f"redis://127.0.0.1:{redis.port}/7"


def test_postgresql_checks_the_password(pool: ServerPool) -> None:
    server = pool.get("postgresql")
    wrong = server.url().replace(":secret@", ":wrong@")
    result = _client(wrong, "SELECT 1")
    assert result.returncode != 0
    assert "password authentication failed" in result.stderr


@pytest.mark.skipif(not available("mysql"), reason=SKIP_REASONS["mysql"])
def test_mysql_account_has_every_privilege_with_grant_option(pool: ServerPool) -> None:
    server = pool.get("mysql")
    assert _query(server.url(), "SELECT CURRENT_USER()") == "backforge@127.0.0.1"
    for host in ("%", "127.0.0.1"):
        grants = server.execute(f"SHOW GRANTS FOR 'backforge'@'{host}'")
        assert "GRANT ALL PRIVILEGES ON *.*" in grants
        assert "WITH GRANT OPTION" in grants


@pytest.mark.parametrize("kind", SQL_KINDS)
def test_passwords_with_url_and_sql_metacharacters_work(kind: ServiceKind) -> None:
    password = "p@ss:w/rd ?'q\"#%\\"
    with serve(kind, password=password) as server:
        url = server.create_database("app")
        assert unquote(urlsplit(url).password or "") == password
        assert _query(url, "SELECT 41 + 1") == "42"


# --- stop and start -----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_stop_refuses_connections_and_start_brings_the_data_back(
    pool: ServerPool, kind: ServiceKind
) -> None:
    server = pool.get(kind)
    name = _unique()
    url = server.create_database(name)
    if kind == "redis":
        server.execute("SET note kept", name)
    else:
        server.execute(
            "CREATE TABLE notes (body VARCHAR(20)); INSERT INTO notes VALUES ('kept');", name
        )
    port = server.port

    server.stop()
    assert not server.running
    assert server.pid is None
    assert _refuses(port)
    assert _client(url, "GET note" if kind == "redis" else "SELECT 1").returncode != 0
    server.stop()  # stopping twice is harmless

    server.start()
    assert server.running
    assert server.port == port
    assert server.url(name) == url
    read = "GET note" if kind == "redis" else "SELECT body FROM notes"
    assert _query(url, read) == "kept"
    server.drop_database(name)


# --- a streaming standby ------------------------------------------------------------------------


def _replicated_note(primary: Server, standby: Standby, body: str) -> tuple[str, str]:
    """A database made on the primary, holding a note: its name, and its URL on the standby,
    where the note is once the standby has caught up."""
    name = _unique()
    primary.create_database(name)
    notes = f"CREATE TABLE notes (body text); INSERT INTO notes VALUES ('{body}')"  # noqa: S608
    primary.execute(notes, name)
    standby.catch_up()
    url = standby.url(name)
    assert url == primary.url(name).replace(f":{primary.port}/", f":{standby.port}/")
    assert _query(url, "SELECT body FROM notes") == body
    return name, url


def _refuses_writes(standby: Standby, name: str, error: str) -> None:
    """An INSERT into database `name` on the standby fails with `error`; so do making and
    dropping a database there."""
    refused = _client(standby.url(name), "INSERT INTO notes VALUES ('on the standby')")
    assert refused.returncode != 0
    assert error in refused.stderr
    with pytest.raises(ServiceError, match="read-only: create it on the primary"):
        standby.create_database(_unique())
    with pytest.raises(ServiceError, match="read-only: drop it on the primary"):
        standby.drop_database(name)


def test_a_standby_streams_the_primarys_writes_and_refuses_its_own(pool: ServerPool) -> None:
    primary, standby = pool.get("postgresql"), pool.standby()
    assert pool.standby() is standby
    assert standby.primary is primary
    assert standby.port != primary.port
    assert (standby.kind, standby.user) == ("postgresql", primary.user)
    name, url = _replicated_note(primary, standby, "on primary")
    assert _query(url, "SELECT pg_is_in_recovery()") == "t"
    assert _query(url, "SELECT status FROM pg_stat_wal_receiver") == "streaming"

    _refuses_writes(standby, name, "cannot execute INSERT in a read-only transaction")

    # Stopped, it refuses connections; started, it catches up from its slot.
    standby.stop()
    assert _refuses(standby.port)
    primary.execute("INSERT INTO notes VALUES ('while it was down')", name)
    standby.start()
    standby.catch_up()
    assert _query(url, "SELECT count(*) FROM notes") == "2"
    primary.drop_database(name)


def _closing_the_pool_closes_its_standby(pool: ServerPool, kind: StandbyKind) -> None:
    """The pool's standby of `kind` stops and leaves nothing when the pool closes, and the
    closed pool makes no other."""
    standby = pool.standby(kind)
    directory, pid = standby.directory, standby.pid
    assert pid is not None
    pool.close()
    assert not standby.running
    assert not directory.exists()
    assert not _alive(pid)
    with pytest.raises(RuntimeError, match="closed"):
        pool.standby(kind)


def test_a_standby_closed_alone_gives_its_slot_back_and_a_pool_closes_it_first() -> None:
    with ServerPool() as pool:
        primary = pool.get("postgresql")
        alone = start_standby(primary)
        slots = "SELECT slot_name FROM pg_replication_slots ORDER BY 1"
        assert primary.execute(slots) == f"backforge_standby_{alone.port}"
        alone.close()
        assert not alone.directory.exists()
        assert primary.execute(slots) == ""  # no WAL kept for a standby that is gone

        _closing_the_pool_closes_its_standby(pool, "postgresql")


@pytest.mark.skipif(not available("redis"), reason=SKIP_REASONS["redis"])
def test_a_standby_needs_a_postgresql_or_mariadb_primary(pool: ServerPool) -> None:
    with pytest.raises(ValueError, match="needs a PostgreSQL or MariaDB primary, not 'redis'"):
        start_standby(pool.get("redis"))
    with pytest.raises(ValueError, match="needs a primary, not another standby"):
        start_standby(pool.standby())
    with pytest.raises(ValueError, match="no standby of a 'redis' server"):
        pool.standby("redis")  # type: ignore[arg-type]


# --- a MariaDB replica --------------------------------------------------------------------------

needs_mariadb = pytest.mark.skipif(not available("mysql"), reason=SKIP_REASONS["mysql"])


@needs_mariadb
def test_a_mariadb_replica_applies_the_primarys_writes_and_refuses_its_own(
    pool: ServerPool,
) -> None:
    primary = pool.get("mysql")
    before = _unique()  # made before the replica: it replays the binary log from its start
    primary.create_database(before)
    primary.execute("CREATE TABLE notes (body text); INSERT INTO notes VALUES ('early')", before)
    standby = pool.standby("mysql")
    assert pool.standby("mysql") is standby
    assert standby.primary is primary
    assert (standby.kind, standby.user) == ("mysql", primary.user)
    assert standby.port != primary.port
    assert _query(standby.url(before), "SELECT body FROM notes") == "early"

    name, url = _replicated_note(primary, standby, "later")  # made after: replicated DDL
    # The app's account reads the replication state, as the rendered app's lag check does.
    assert _query(url, "SELECT @@read_only") == "1"
    assert "\tYes\tYes\t" in _query(url, "SHOW REPLICA STATUS")  # both threads running

    _refuses_writes(standby, name, "is running with the --read-only option")

    # Applying paused: catch_up says so, naming the stopped thread; resumed, it catches up.
    standby.execute("STOP REPLICA SQL_THREAD")
    try:
        primary.execute("INSERT INTO notes VALUES ('paused')", name)
        with pytest.raises(ServiceError, match=r"within 1 s .*Slave_SQL_Running: No"):
            standby.catch_up(timeout=1)
    finally:
        standby.execute("START REPLICA SQL_THREAD")
    standby.catch_up()
    assert _query(url, "SELECT count(*) FROM notes") == "2"

    # Stopped, it refuses connections; started, it replicates again from where it was.
    standby.stop()
    assert _refuses(standby.port)
    primary.execute("INSERT INTO notes VALUES ('while it was down')", name)
    primary.drop_database(before)
    standby.start()
    standby.catch_up()
    assert _query(url, "SELECT count(*) FROM notes") == "3"
    assert before not in _query(url, "SHOW DATABASES").split()
    primary.drop_database(name)


@needs_mariadb
def test_a_mariadb_replica_closed_alone_leaves_nothing_and_a_pool_closes_it_first() -> None:
    with ServerPool() as pool:
        primary = pool.get("mysql")
        alone = start_standby(primary)
        directory, pid = alone.directory, alone.pid
        assert pid is not None
        alone.close()
        assert not directory.exists()
        assert not _alive(pid)
        assert not _processes_using(directory)
        assert primary.execute("SELECT 1") == "1"  # the primary does not miss it

        _closing_the_pool_closes_its_standby(pool, "mysql")


class _UnloggedMariaDB(mariadb.MariaDBService):
    """A MariaDB server without a binary log: nothing for a replica to follow."""

    def replication_options(self) -> list[str]:
        return ["--skip-log-bin"]


@needs_mariadb
def test_a_mariadb_replica_that_cannot_follow_its_primary_says_why_and_leaves_nothing(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = _UnloggedMariaDB(user="backforge", password="secret", timeout=60)
    service.launch()
    unlogged = Server(
        kind="mysql",
        host="127.0.0.1",
        port=service.port,
        user=service.user,
        password=service.password,
        _service=service,
    )
    replicas = tmp_path_factory.mktemp("r")  # where the replicas' directories go (a short path)
    monkeypatch.setattr(tempfile, "tempdir", str(replicas))
    try:
        with pytest.raises(ServiceError, match="has no binary log \\(log_bin is OFF\\)"):
            start_standby(unlogged)
        unlogged.stop()
        with pytest.raises(ServiceError, match=r"cannot make a replica of .*Can't connect"):
            start_standby(unlogged)
    finally:
        unlogged.close()
    assert list(replicas.iterdir()) == []


# --- teardown -----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_teardown_leaves_no_process_and_no_directory_even_on_error(kind: ServiceKind) -> None:
    with pytest.raises(RuntimeError, match="boom"), serve(kind) as server:
        pid = server.pid
        directory = server.directory
        assert pid is not None
        assert directory.is_dir()
        assert pid in _processes_using(directory)
        raise RuntimeError("boom")

    assert pid is not None
    assert not server.running
    assert not directory.exists()
    assert not _alive(pid)
    assert _processes_using(directory) == []
    assert _refuses(server.port)
    with pytest.raises(ServiceError, match="closed"):
        server.start()


@pytest.mark.skipif(os.geteuid() != 0, reason="only root has to drop privileges")
def test_postgresql_runs_unprivileged_when_we_are_root(pool: ServerPool) -> None:
    server = pool.get("postgresql")
    status = Path(f"/proc/{server.pid}/status").read_text()
    real_uid = int(re.search(r"^Uid:\s+(\d+)", status, re.MULTILINE).group(1))  # type: ignore[union-attr]
    assert real_uid != 0
    assert _query(server.url(), "SELECT current_setting('fsync')") == "off"


@needs_redis
def test_pool_starts_each_kind_once_on_first_use_and_stops_all_at_exit() -> None:
    with ServerPool() as pool:
        assert pool.servers == {}
        first = pool.get("redis")
        assert pool.get("redis") is first
        assert set(pool.servers) == {"redis"}
        directory = first.directory
        assert first.running
    assert not first.running
    assert not directory.exists()
    with pytest.raises(RuntimeError, match="closed"):
        pool.get("redis")


# --- failures -----------------------------------------------------------------------------------

INSTALL_HINTS: dict[ServiceKind, str] = {
    "postgresql": "apt-get install -y postgresql",
    "mysql": "apt-get install -y mariadb-server",
    "redis": "apt-get install -y redis-server",
}


@pytest.mark.parametrize("kind", KINDS)
def test_missing_binaries_raise_service_unavailable_with_the_install_command(
    kind: ServiceKind, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty directory
    monkeypatch.setattr(servers.base, "FALLBACK_BIN_DIRS", ())
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))

    assert available(kind) is False
    hint = re.escape(INSTALL_HINTS[kind])
    with pytest.raises(ServiceUnavailable, match=hint) as caught, serve(kind):
        pytest.fail("started without binaries")
    assert isinstance(caught.value, RuntimeError)
    with ServerPool() as pool:
        for _ in range(2):  # the failure is remembered, not retried
            with pytest.raises(ServiceUnavailable, match=hint):
                pool.get(kind)
    assert list(tmp_path.iterdir()) == []  # nothing was created


@needs_redis
def test_a_server_that_dies_at_startup_reports_its_log_and_leaves_nothing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    command = servers.redis.RedisService.command
    monkeypatch.setattr(
        servers.redis.RedisService,
        "command",
        lambda self: [*command(self), "--no-such-directive", "x"],
    )
    started = time.monotonic()
    with pytest.raises(ServiceError, match="exited during startup") as caught, serve("redis"):
        pytest.fail("started with a bad directive")
    assert time.monotonic() - started < 10  # failed fast instead of waiting out the deadline
    assert "Last lines of the server log" in str(caught.value)
    assert "no-such-directive" in str(caught.value)
    assert list(tmp_path.iterdir()) == []
    assert _processes_using(tmp_path) == []


@needs_redis
def test_a_server_that_does_not_answer_in_time_is_killed(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    with pytest.raises(ServiceError, match=r"did not answer a query within 0\.001 s"):
        servers.start_server("redis", timeout=0.001)
    assert list(tmp_path.iterdir()) == []
    assert _processes_using(tmp_path) == []


def test_unknown_kind_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown server kind"):
        servers.start_server("oracle")  # type: ignore[arg-type]


def test_server_is_a_frozen_handle(pool: ServerPool) -> None:
    server: Server = pool.get("postgresql")
    with pytest.raises(AttributeError):
        server.port = 1  # type: ignore[misc]
