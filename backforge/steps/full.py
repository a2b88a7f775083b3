"""The full tier's own steps: types, Dockerfile, CI schema, migrations and the project's tests
against real servers (one database per variant on the run's ServerPool)."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from backforge.databases import database_of
from backforge.servers import ServerPool, ServiceKind
from backforge.steps.results import StepFailed
from backforge.steps.tools import in_project, run_tool, tool, unique_name


def mypy_strict(project: Path) -> str:
    return in_project(project, "mypy", "--no-incremental", env={"MYPY_CACHE_DIR": "/dev/null"})


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


def migrations_round_trip(project: Path, database_url: str) -> str:
    env = {"DATABASE_URL": database_url, "ENVIRONMENT": "test"}
    output = [
        in_project(project, "alembic", "upgrade", "heads", env=env),
        in_project(project, "alembic", "check", env=env),
        in_project(project, "alembic", "downgrade", "base", env=env),
        in_project(project, "alembic", "upgrade", "heads", env=env),
        in_project(project, "alembic", "check", env=env),
    ]
    return "\n".join(output)


def project_pytest(
    project: Path, database_url: str, extra_env: Mapping[str, str] | None = None
) -> str:
    env = {"DATABASE_URL": database_url, "COVERAGE_FILE": str(project / ".coverage")}
    env.update(extra_env or {})
    return in_project(project, "pytest", "-q", "-p", "no:cacheprovider", env=env)


@dataclass
class Resources:
    """A variant's own database (and Redis database) on the pool's servers, made on first use."""

    project: Path
    answers: Mapping[str, Any]
    pool: ServerPool | None
    made: list[tuple[ServiceKind, str]] = field(default_factory=list)
    _database_url: str | None = None
    _redis_url: str | None = None

    def database_url(self) -> str:
        if self._database_url is None:
            database = database_of(self.answers)
            if database.server is None:
                self._database_url = database.embedded_url(self.project)
            else:
                self._database_url = self._create(database.server)
        return self._database_url

    def extra_env(self) -> dict[str, str]:
        example = self.project / ".env.example"
        needs_redis = example.is_file() and "REDIS_URL" in example.read_text(encoding="utf-8")
        if needs_redis and self._redis_url is None:
            self._redis_url = self._create("redis")
        return {"REDIS_URL": self._redis_url} if self._redis_url else {}

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
