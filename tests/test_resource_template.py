"""The resource template (resource/) applied with plain Copier renders what `backforge add
resource` renders.

What the rendered resources do (ruff, mypy --strict, `alembic upgrade heads` + `alembic check`,
the project's suite with the resources' tests and the schemathesis test) is proven by the full
tier: `backforge check --tier full --with-resources` adds the same two resources to every
pairwise variant (tests/test_check_sets.py, `backforge.steps.resources`), which installs and
runs each variant anyway. What the full tier cannot prove is the plain-Copier way the README
shows (`copier copy -a .copier-answers.resource-<name>.yml`, the project's answers read through
`_external_data`, no `-d` for them): that is this module, without installs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import copier
import pytest
import yaml
from test_update import commit_all

from backforge.render import render
from backforge.resources.project import alembic_heads
from backforge.resources.template import resource_template
from backforge.steps.resources import add_resources, example_resources

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


def resources(auth: str) -> list[dict[str, Any]]:
    """`customer` and `invoice` of `steps.resources.example_resources`, as plain Copier answers
    (the contract's field mappings; every name derived by the template; `down_revisions`, the
    project's heads when each is added, by the caller)."""
    customer = {
        "resource": "customer",
        "fields": [*EVERY_TYPE, *([USER_REF] if auth == "jwt" else [])],
        "search": ["title", "notes"],
        "sort": ["title", "amount", "due", "status"],
    }
    invoice = {
        "resource": "invoice",
        "fields": [
            {"name": "number", "type": "str", "length": 40, "optional": False},
            {"name": "customer", "type": "ref", "target": "customer", "optional": False},
        ],
        "search": ["number"],
        "sort": ["number"],
    }
    return [customer, invoice]


def _files(project: Path) -> dict[str, bytes]:
    return {
        path.relative_to(project).as_posix(): path.read_bytes()
        for path in sorted(project.rglob("*"))
        if path.is_file() and ".git" not in path.relative_to(project).parts
    }


def _answers(text: bytes) -> dict[str, Any]:
    """An answers file without Copier's own keys (where the template came from)."""
    loaded = yaml.safe_load(text)
    return {key: value for key, value in loaded.items() if not key.startswith("_")}


@pytest.mark.parametrize(
    "answers",
    [
        {"database": "postgresql", "auth": "jwt", "multi_tenant": True, "features": ["cache"]},
        {"database": "sqlite", "auth": "none", "features": []},
    ],
    ids=["postgresql-jwt-mt-cache", "sqlite-none"],
)
def test_plain_copier_renders_what_add_resource_renders(
    answers: dict[str, Any], tmp_path: Path
) -> None:
    projects = {}
    for way in ("copier", "backforge"):
        project = tmp_path / way / "shop"
        render(str(REPO), project, {"project_name": "Shop", **answers}, quiet=True)
        projects[way] = project
    plain = projects["copier"]
    for data in resources(str(answers["auth"])):
        copier.run_copy(
            str(RESOURCE),
            str(plain),
            data={**data, "down_revisions": alembic_heads(plain)},
            answers_file=f".copier-answers.resource-{data['resource']}.yml",
            defaults=True,
            unsafe=True,
            quiet=True,
        )
    commit_all(plain, "Add customer and invoice")
    add_resources(projects["backforge"], example_resources(answers), resource_template())
    by_copier, by_backforge = _files(plain), _files(projects["backforge"])
    assert "tests/test_customers.py" in by_copier
    assert by_copier.keys() == by_backforge.keys()
    for relative, content in by_copier.items():
        if relative.startswith(".copier-answers."):  # _commit: Copier's commit of a dirty tree
            assert _answers(content) == _answers(by_backforge[relative]), relative
        elif relative != ".env":  # fresh secrets in each project
            assert content == by_backforge[relative], relative
