"""The resource template (resource/) in rendered projects: two resources added, one using every
field type and one referring to the first, then ruff, mypy --strict, `alembic upgrade heads` +
`alembic check` (no drift) and the project's whole suite, which runs the resources' own tests and
the schemathesis test over their routes.

Budgeted: four variants that cover each database, each auth/tenancy (owner, organization and
global scope) and the Redis features (cached reads, events, limits, jobs) on and off, rather
than every combination (each costs an install and a whole suite, 2 to 4 minutes).
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path
from typing import Any

import copier
import pytest
from test_update import commit_all, git

from backforge.commands import install, uv_binary
from backforge.render import render
from backforge.servers import ServerPool, available

REPO = Path(__file__).resolve().parent.parent
RESOURCE = REPO / "resource"

EVERY_TYPE: list[dict[str, Any]] = [
    {"name": "title", "type": "str", "length": 120, "optional": False},
    {"name": "notes", "type": "text", "optional": True},
    {"name": "count", "type": "int", "optional": False, "default": 0},
    {"name": "amount", "type": "decimal", "precision": 12, "scale": 2, "optional": False},
    {"name": "paid", "type": "bool", "optional": False, "default": False},
    {"name": "due", "type": "date", "optional": True},
    {"name": "at", "type": "datetime", "optional": False},
    {"name": "ext", "type": "uuid", "optional": True},
    {
        "name": "status",
        "type": "enum",
        "choices": ["draft", "sent", "paid"],
        "optional": False,
        "default": "draft",
    },
]
USER_REF = {"name": "contact", "type": "ref", "target": "user", "optional": True}


def resources(auth: str, heads: list[str]) -> list[dict[str, Any]]:
    """`customer` (every field type; a user reference with auth) and `invoice` (a reference to
    a customer), as `backforge add resource` would answer them."""
    customer = {
        "resource": "customer",
        "fields": [*EVERY_TYPE, *([USER_REF] if auth == "jwt" else [])],
        "search": ["title", "notes"],
        "sort": ["title", "amount", "due", "status"],
        "down_revisions": heads,
    }
    invoice = {
        "resource": "invoice",
        "fields": [
            {"name": "number", "type": "str", "length": 40, "optional": False},
            {"name": "customer", "type": "ref", "target": "customer", "optional": False},
        ],
        "search": ["number"],
        "sort": ["number"],
        "down_revisions": ["customer_0001"],
    }
    return [customer, invoice]


VARIANTS: dict[str, dict[str, Any]] = {
    "mysql-tenants-redis": {
        "database": "mysql",
        "auth": "jwt",
        "multi_tenant": True,
        "features": ["cache", "websockets", "rate_limit"],
    },
    "sqlite-none-redis": {
        "database": "sqlite",
        "auth": "none",
        "features": ["cache", "websockets", "rate_limit", "jobs"],
    },
    "postgresql-owner-redis": {
        "database": "postgresql",
        "auth": "jwt",
        "features": ["cache", "websockets", "rate_limit", "jobs"],
    },
    "postgresql-tenants": {
        "database": "postgresql",
        "auth": "jwt",
        "multi_tenant": True,
        "features": [],
    },
}


def _run(project: Path, env: dict[str, str], *command: str) -> str:
    started = time.perf_counter()
    result = subprocess.run(
        [uv_binary(), "run", *command],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"{' '.join(command)} failed:\n{output[-6000:]}"
    return f"{' '.join(command[:2])}: {time.perf_counter() - started:.0f} s"


def _heads(project: Path, env: dict[str, str]) -> list[str]:
    result = subprocess.run(
        [uv_binary(), "run", "alembic", "heads"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return sorted(line.split()[0] for line in result.stdout.splitlines() if line.strip())


@pytest.mark.slow
@pytest.mark.parametrize("name", list(VARIANTS))
def test_two_resources_pass_the_projects_toolchain_and_suite(
    name: str,
    tmp_path: Path,
    server_pool: ServerPool,
    record_property: Any,
) -> None:
    answers = VARIANTS[name]
    if answers["database"] != "sqlite" and not available(answers["database"]):
        pytest.skip(f"no {answers['database']} server binaries on this machine")
    project = tmp_path / "shop"
    render(str(REPO), project, {"project_name": "Shop", **answers}, quiet=True)
    install(project)
    env = {**os.environ, "ENVIRONMENT": "test"}
    env.pop("VIRTUAL_ENV", None)
    if answers["database"] != "sqlite":
        env["DATABASE_URL"] = server_pool.get(answers["database"]).create_database(
            f"resources_{name.replace('-', '_')}"
        )
    heads = _heads(project, env)
    for data in resources(str(answers["auth"]), heads):
        copier.run_copy(
            str(RESOURCE),
            str(project),
            data=data,
            answers_file=f".copier-answers.resource-{data['resource']}.yml",
            defaults=True,
            unsafe=True,
            quiet=True,
        )
    commit_all(project, "Add customer and invoice")
    # The owner and the organization come in revisions of their own, on a branch of each
    # resource: `<resource>_owner` (owner or organization scope), then `<resource>_tenancy`.
    last = "tenancy" if answers.get("multi_tenant") else "owner" if answers["auth"] == "jwt" else ""
    expected = [f"customer_{last}", f"invoice_{last}"] if last else ["invoice_0001"]
    assert _heads(project, env) == expected
    assert "test_customers.py" in git(project, "ls-files", "tests")
    steps = [
        _run(project, env, "ruff", "check", "."),
        _run(project, env, "ruff", "format", "--check", "."),
        _run(project, env, "mypy"),
        _run(project, env, "alembic", "upgrade", "heads"),
        _run(project, env, "alembic", "check"),
        _run(project, env, "pytest", "-q", "-x", "-p", "no:cacheprovider"),
    ]
    record_property("steps", steps)
