"""The full tier's own steps: types, Dockerfile, CI schema, migrations and the project's tests
against real servers (one database per variant on the run's ServerPool)."""

from __future__ import annotations

import contextlib
import re
import shutil
import sqlite3
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from backforge.databases import database_of
from backforge.model import Variant
from backforge.servers import ServerPool, ServiceKind
from backforge.steps.results import StepFailed
from backforge.steps.tools import in_project, project_python, run_tool, tool, unique_name


class SharedTypeCache:
    """mypy's cache of the installed packages, shared by the variants of one run.

    Most of a variant's `mypy` time goes to the packages it imports (SQLAlchemy, pydantic,
    FastAPI, ...): the same files in every variant. Each variant starts from the entries the
    variants before it left, **except for its own modules**: every entry under a top-level name
    of a project (`app`, `tests`, `migrations`, ...) is left out, so the project's code is
    always checked from scratch. A package entry is reused only if its file's hash matches
    (mypy's own incremental rule), and installed packages never import a project's modules, so
    the result is the one a cold run gives.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._lock = threading.Lock()

    def mypy(self, project: Path) -> str:
        """`mypy` (strict, from the project's configuration) over `project`."""
        cache = project / ".mypy_cache"
        shutil.rmtree(cache, ignore_errors=True)
        with self._lock:
            if self.directory.is_dir():
                shutil.copytree(self.directory, cache)
        try:
            output = in_project(project, "mypy", env={"MYPY_CACHE_DIR": str(cache)})
            with self._lock:
                _keep_package_entries(cache, self.directory, own=_own_names(project))
            return output
        finally:
            shutil.rmtree(cache, ignore_errors=True)


def _own_names(project: Path) -> frozenset[str]:
    """The top-level names under which a project's own modules sit in mypy's cache."""
    return frozenset(
        path.name.removesuffix(".py")
        for path in project.iterdir()
        if path.is_dir() or path.suffix == ".py"
    )


def _is_own(cache_path: str, own: frozenset[str]) -> bool:
    return cache_path.split("/", 1)[0].split(".", 1)[0] in own


def _keep_package_entries(cache: Path, shared: Path, *, own: frozenset[str]) -> None:
    """Add the package entries of one run's `cache` to `shared` (newest wins).

    mypy keeps its cache in SQLite shards (`<python version>/cache.N.db`, rows keyed by a
    module's path). Anything else it writes is not shared: a variant then checks more itself.
    """
    for shard in cache.glob("*/*.db"):
        target = shared / shard.parent.name
        target.mkdir(parents=True, exist_ok=True)
        _merge_shard(shard, target / shard.name, own)


def _merge_shard(source: Path, target: Path, own: frozenset[str]) -> None:
    with contextlib.closing(sqlite3.connect(target)) as db:
        db.execute("ATTACH DATABASE ? AS run", (str(source),))
        tables = db.execute("SELECT name, sql FROM run.sqlite_master WHERE type = 'table'")
        for name, sql in tables.fetchall():
            if not _TABLE_NAME.fullmatch(name):
                continue  # not a table mypy made
            columns = [row[1] for row in db.execute(f"PRAGMA run.table_info({name})")]
            if "path" not in columns:
                continue
            db.execute(sql.replace("CREATE TABLE", "CREATE TABLE IF NOT EXISTS", 1))
            # The table name is checked above: an identifier, not a value to bind.
            rows = db.execute(f"SELECT * FROM run.{name}").fetchall()  # noqa: S608
            at = columns.index("path")
            kept = [row for row in rows if not _is_own(row[at], own)]
            marks = ", ".join("?" * len(columns))
            insert = f"INSERT OR REPLACE INTO main.{name} VALUES ({marks})"  # noqa: S608
            db.executemany(insert, kept)
        db.commit()


_TABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def hadolint(project: Path) -> str:
    dockerfile = project / "Dockerfile"
    if not dockerfile.exists():
        return "no Dockerfile (docker=false)"
    return run_tool([*tool("hadolint"), "--failure-threshold", "warning", "Dockerfile"], project)


def ci_schema(project: Path) -> str:
    checks = []
    github = project / ".github" / "workflows" / "ci.yml"
    gitlab = project / ".gitlab-ci.yml"
    if github.exists():
        checks.append(("vendor.github-workflows", github))
    if gitlab.exists():
        checks.append(("vendor.gitlab-ci", gitlab))
    output = []
    for schema, path in checks:
        yaml.safe_load(path.read_text(encoding="utf-8"))
        output.append(
            run_tool([*tool("check-jsonschema"), "--builtin-schema", schema, str(path)], project)
        )
    return "\n".join(output) or "no CI workflow (ci=none)"


# Alembic's own commands, in one process of the project (one import of the app, not five).
_ROUND_TRIP = """
from alembic import command
from alembic.config import Config

config = Config("alembic.ini")
for name, *arguments in (
    ("upgrade", "heads"), ("check",), ("downgrade", "base"), ("upgrade", "heads"), ("check",)
):
    print("$ alembic", name, *arguments, flush=True)
    getattr(command, name)(config, *arguments)
"""


def migrations_round_trip(project: Path, database_url: str) -> str:
    """upgrade heads, check (no drift), downgrade base, upgrade heads, check."""
    env = {"DATABASE_URL": database_url, "ENVIRONMENT": "test"}
    return run_tool([project_python(project), "-c", _ROUND_TRIP], project, env=env)


def project_pytest(
    project: Path,
    database_url: str,
    extra_env: Mapping[str, str] | None = None,
    *,
    coverage: bool = True,
) -> str:
    """The project's own test command; `coverage=False` leaves its coverage gate out (the tests
    run in about half the time)."""
    env = {"DATABASE_URL": database_url, "COVERAGE_FILE": str(project / ".coverage")}
    env.update(extra_env or {})
    options = [] if coverage else ["--no-cov"]
    return in_project(project, "pytest", "-q", "-p", "no:cacheprovider", *options, env=env)


@dataclass
class Resources:
    """A variant's own database (and Redis database) on the pool's servers, made on first use.

    `variant` is None when backforge could not read it from copier.yml (its render fails)."""

    project: Path
    variant: Variant | None
    pool: ServerPool | None
    made: list[tuple[ServiceKind, str]] = field(default_factory=list)
    _database_url: str | None = None
    _redis_url: str | None = None

    def database_url(self) -> str:
        if self._database_url is None:
            database = database_of(self._variant())
            if database.server is None:
                self._database_url = database.embedded_url(self.project)
            else:
                self._database_url = self._create(database.server)
        return self._database_url

    def extra_env(self) -> dict[str, str]:
        """REDIS_URL of a Redis database of its own when the variant needs Redis (copier.yml's
        computed `redis`); DATABASE_READ_URL, the pool's read-only replica of its database
        server (one per kind for the whole run: a streaming standby of PostgreSQL, a GTID
        replica of MariaDB), for a PostgreSQL or MySQL variant: the suite's replica tests read
        their own database there."""
        variant = self._variant()
        if variant.needs_redis and self._redis_url is None:
            self._redis_url = self._create("redis")
        env = {"REDIS_URL": self._redis_url} if self._redis_url else {}
        server = database_of(variant).server
        if server in ("postgresql", "mysql") and self.pool is not None:
            env["DATABASE_READ_URL"] = self.pool.standby(server).url()
        return env

    def _variant(self) -> Variant:
        if self.variant is None:
            raise StepFailed("backforge could not read this variant from copier.yml")
        return self.variant

    def _create(self, kind: ServiceKind) -> str:
        if self.pool is None:
            raise StepFailed(f"this variant needs a {kind} server, and no server pool was given")
        name = unique_name("bf")
        url = self.pool.get(kind).create_database(name)
        self.made.append((kind, name))
        return url

    def release(self) -> None:
        for kind, name in self.made:
            with contextlib.suppress(Exception):
                if self.pool is not None:
                    self.pool.get(kind).drop_database(name)
        self.made.clear()
