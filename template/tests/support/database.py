"""Throwaway test databases on whatever server DATABASE_URL names.

Each test run creates its own database (SQLite: a file) and drops it at the end, so that runs can
share one server. Migrations are applied with Alembic, so the suite also proves they work.
"""

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from app.core.config import Settings
from app.db.url import to_async_url

ROOT = Path(__file__).resolve().parents[2]  # the project


def configured_database_url() -> str:
    """DATABASE_URL read as the app reads it: the environment first, then `.env`."""
    return Settings().database_url


def alembic_config(database_url: str) -> Config:
    config = Config(str(ROOT / "alembic.ini"))
    config.attributes["database_url"] = to_async_url(database_url)
    config.attributes["configure_logger"] = False
    return config


async def _admin_execute(server_url: str, statement: str) -> None:
    engine = create_async_engine(to_async_url(server_url), isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as connection:
            await connection.execute(text(statement))
    finally:
        await engine.dispose()


def create_database(server_url: str, directory: Path) -> str:
    """Create a uniquely named database next to `server_url`'s and return its URL."""
    url = make_url(server_url)
    name = f"test_{uuid.uuid4().hex[:12]}"
    backend = url.get_backend_name()
    if backend == "sqlite":
        return f"sqlite:///{directory / f'{name}.db'}"
    if backend == "postgresql":
        asyncio.run(_admin_execute(server_url, f'CREATE DATABASE "{name}"'))
    elif backend in {"mysql", "mariadb"}:
        asyncio.run(_admin_execute(server_url, f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4"))
    else:
        raise ValueError(f"unsupported test database {backend!r}")
    return url.set(database=name).render_as_string(hide_password=False)


def drop_database(server_url: str, database_url: str) -> None:
    url = make_url(database_url)
    backend = url.get_backend_name()
    if backend == "sqlite":
        for suffix in ("", "-wal", "-shm"):
            Path(f"{url.database}{suffix}").unlink(missing_ok=True)
    elif backend == "postgresql":
        statement = f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)'
        asyncio.run(_admin_execute(server_url, statement))
    else:
        asyncio.run(_admin_execute(server_url, f"DROP DATABASE IF EXISTS `{url.database}`"))


def migrate(database_url: str, revision: str = "heads") -> None:
    command.upgrade(alembic_config(database_url), revision)


def unreachable_url(database_url: str) -> str:
    """A URL of the same kind that nothing answers (a closed port, or a missing folder)."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        return "sqlite:////nonexistent-folder/never/test.db"
    return url.set(host="127.0.0.1", port=1).render_as_string(hide_password=False)


@contextlib.asynccontextmanager
async def driver_threads_end(seconds: float = 5.0) -> AsyncIterator[None]:
    """On leaving, wait until the SQLite driver threads started inside have ended.

    aiosqlite stops the thread of a connection that failed to open without waiting for it, and
    the thread then answers on the event loop that asked: a test that ends first closes that loop
    under it (an unhandled-thread-exception warning). Other drivers start no such threads.
    """
    before = set(threading.enumerate())
    yield
    started = [
        thread
        for thread in threading.enumerate()
        if thread not in before and "_connection_worker_thread" in thread.name
    ]
    deadline = time.monotonic() + seconds
    while any(thread.is_alive() for thread in started):
        assert time.monotonic() < deadline, "a driver thread is still running"
        await asyncio.sleep(0.01)


def run_in_new_interpreter(script: str, database_url: str) -> Any:
    """Run `script` in an interpreter of its own, in the project, on `database_url`; what it
    printed last, as JSON (for what this process can no longer show: its first import, say)."""
    env = {**os.environ, "DATABASE_URL": database_url, "ENVIRONMENT": "test"}
    result = subprocess.run(  # noqa: S603  (our own interpreter and script)
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


async def replayed(primary: AsyncEngine, replica: AsyncEngine, seconds: float = 10.0) -> None:
    """Wait until `replica` (a PostgreSQL standby, a MariaDB replica) has applied what `primary`
    has written so far; a replica that is no standby (the primary itself) has nothing to wait
    for."""
    if primary.dialect.name != "postgresql":
        await _applied(primary, replica, seconds)
        return
    async with primary.connect() as connection:
        target = (await connection.execute(text("SELECT pg_current_wal_insert_lsn()"))).scalar()
    done = text(
        "SELECT pg_last_wal_replay_lsn() IS NULL"
        " OR pg_last_wal_replay_lsn() >= CAST(:lsn AS pg_lsn)"
    )
    deadline = time.monotonic() + seconds  # only stops a test that would otherwise hang
    async with replica.connect() as connection:
        while not (await connection.execute(done, {"lsn": target})).scalar_one():
            assert time.monotonic() < deadline, f"the standby did not replay up to {target}"
            await asyncio.sleep(0.01)


async def _applied(primary: AsyncEngine, replica: AsyncEngine, seconds: float) -> None:
    """MariaDB: wait (MASTER_GTID_WAIT, bounded) for the primary's binary log position."""
    async with replica.connect() as connection:
        if (await connection.execute(text("SHOW REPLICA STATUS"))).first() is None:
            return  # not a replica
    async with primary.connect() as connection:
        target = (await connection.execute(text("SELECT @@gtid_binlog_pos"))).scalar_one()
    wait = text("SELECT MASTER_GTID_WAIT(:target, :seconds)")
    async with replica.connect() as connection:
        reached = await connection.execute(wait, {"target": target, "seconds": seconds})
        assert reached.scalar_one() == 0, f"the replica did not apply up to {target}"
