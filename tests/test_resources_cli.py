"""`backforge add resource` before anything is rendered: field specs, names, the project's
Alembic heads and names, and the CLI's refusals (exit 2, nothing written)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from test_update import git
from typer.testing import CliRunner

from backforge.cli import app
from backforge.errors import UsageError
from backforge.render import render
from backforge.resources.add import Names, default_scope, plan_resource
from backforge.resources.naming import class_name_of, plural_of, url_of
from backforge.resources.project import (
    BASE_NAMES,
    BASE_REVISIONS,
    alembic_heads,
    missing_imports,
    resource_answers,
    resource_update_data,
    revisions,
    taken_names,
)
from backforge.resources.spec import parse_field, summarize

runner = CliRunner()
REPO = Path(__file__).resolve().parent.parent

# ---------------------------------------------------------------------------------------------
# Field specs
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "mapping"),
    [
        ("title:str(120)", {"name": "title", "type": "str", "optional": False, "length": 120}),
        ("code:str", {"name": "code", "type": "str", "optional": False, "length": 255}),
        ("notes:text?", {"name": "notes", "type": "text", "optional": True}),
        ("count:int", {"name": "count", "type": "int", "optional": False}),
        ("count:int=-5", {"name": "count", "type": "int", "optional": False, "default": -5}),
        (
            "amount:decimal(12,2)",
            {"name": "amount", "type": "decimal", "optional": False, "precision": 12, "scale": 2},
        ),
        (
            "amount:decimal(12,2)?=5",
            {
                "name": "amount",
                "type": "decimal",
                "optional": True,
                "default": "5.00",
                "precision": 12,
                "scale": 2,
            },
        ),
        ("paid:bool=false", {"name": "paid", "type": "bool", "optional": False, "default": False}),
        ("due:date?", {"name": "due", "type": "date", "optional": True}),
        (
            "due:date=2024-02-29",
            {"name": "due", "type": "date", "optional": False, "default": "2024-02-29"},
        ),
        ("at:datetime", {"name": "at", "type": "datetime", "optional": False}),
        (
            "at:datetime=2024-12-31T09:30:00Z",
            {
                "name": "at",
                "type": "datetime",
                "optional": False,
                "default": "2024-12-31T09:30:00+00:00",
            },
        ),
        ("ext:uuid", {"name": "ext", "type": "uuid", "optional": False}),
        (
            "status:enum(draft|sent|paid)=draft",
            {
                "name": "status",
                "type": "enum",
                "optional": False,
                "default": "draft",
                "choices": ["draft", "sent", "paid"],
            },
        ),
        (
            "customer:ref(customer)",
            {"name": "customer", "type": "ref", "optional": False, "target": "customer"},
        ),
        ("buyer:ref(user)?", {"name": "buyer", "type": "ref", "optional": True, "target": "user"}),
        (
            "label:str(10)=a=b",
            {"name": "label", "type": "str", "optional": False, "length": 10, "default": "a=b"},
        ),
        (
            "label:str(10)?=",
            {"name": "label", "type": "str", "optional": True, "length": 10, "default": ""},
        ),
    ],
)
def test_field_specs_map_to_the_contract(spec: str, mapping: dict[str, Any]) -> None:
    field = parse_field(spec)
    assert field.answer() == mapping
    assert parse_field(summarize(field.answer())).answer() == mapping


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("title", "must look like name:type"),
        (":str", "has no name"),
        ("Title:str", "field name 'Title' is not snake_case"),
        ("line__item:str", "is not snake_case"),
        ("title:string", "unknown type 'string'"),
        ("title:str(0)", "str(n) needs 1 <= n <= 768"),
        ("title:str(5000)", "str(n) needs 1 <= n <= 768"),
        ("title:str(abc)", "must be a whole number"),
        ("amount:decimal(3,5)", "needs 0 <= s <= p"),
        ("amount:decimal(3)", "decimal needs (precision,scale)"),
        ("amount:decimal", "decimal needs (precision,scale)"),
        ("amount:decimal(0,0)", "needs 1 <= p <= 65"),
        ("count:int(3)", "type int takes no arguments"),
        ("count:int=abc", "default 'abc' does not fit int"),
        ("count:int=3000000000", "32-bit"),
        ("amount:decimal(4,2)=123.4", "at most 2 digits before the point"),
        ("amount:decimal(6,2)=1.234", "more than 2 digits after the point"),
        ("paid:bool=maybe", "expected true or false"),
        ("due:date=2024-13-01", "expected a real date"),
        ("due:date=2023-02-29", "expected a real date"),
        ("due:date=20240101", "expected a real date"),
        ("at:datetime=2024-01-01T10:00:00", "has no UTC offset"),
        ("at:datetime=yesterday", "expected ISO 8601"),
        ("ext:uuid=nope", "expected a UUID"),
        ("status:enum(draft|sent)=paid", "not one of the choices draft|sent"),
        ("status:enum()", "enum needs its choices"),
        ("status:enum(draft|draft)", "must be distinct"),
        ("status:enum(Draft|sent)", "enum choice 'Draft'"),
        ("status:enum(in|out)", "enum choice 'in'"),
        ("customer:ref", "ref needs its target"),
        ("customer:ref(customer)=x", "a ref has no default"),
        ("title:str(3)=long", "at most 3"),
        ("id:uuid", "field 'id': the name is reserved"),
        ("created_at:datetime", "field 'created_at': the name is reserved"),
        ("updated_at:datetime", "the name is reserved"),
        ("owner_id:uuid", "the name is reserved"),
        ("organization_id:uuid", "the name is reserved"),
        ("metadata:text", "the name is reserved"),
        ("owner:ref(user)", "field 'owner': its column 'owner_id' is reserved"),
        ("organization:ref(org)", "its column 'organization_id' is reserved"),
        ("model_name:str", "reserved by pydantic"),
        ("class:str", "field name 'class' is a Python keyword"),
        ("order:int", "field name 'order' is an SQL reserved word"),
    ],
)
def test_bad_field_specs_name_the_field_and_the_rule(spec: str, message: str) -> None:
    with pytest.raises(UsageError, match=None) as raised:
        parse_field(spec)
    assert message in str(raised.value)


# ---------------------------------------------------------------------------------------------
# Names
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "plural"),
    [
        ("invoice", "invoices"),
        ("line_item", "line_items"),
        ("category", "categories"),
        ("day", "days"),
        ("status", "statuses"),
        ("box", "boxes"),
        ("quiz", "quizes"),
        ("batch", "batches"),
        ("wish", "wishes"),
    ],
)
def test_plurals_follow_simple_english(name: str, plural: str) -> None:
    assert plural_of(name) == plural


def test_derived_names() -> None:
    assert class_name_of("line_item") == "LineItem"
    assert class_name_of("invoice2") == "Invoice2"
    assert url_of("line_items") == "line-items"


def test_default_scope_follows_the_project() -> None:
    assert default_scope({"auth": "none"}) == "global"
    assert default_scope({"auth": "jwt", "multi_tenant": False}) == "owner"
    assert default_scope({"auth": "jwt"}) == "owner"
    assert default_scope({"auth": "jwt", "multi_tenant": True}) == "organization"


# ---------------------------------------------------------------------------------------------
# A project, read statically
# ---------------------------------------------------------------------------------------------

MODEL = """
from sqlmodel import Field, SQLModel


class Item(SQLModel, table=True):
    __tablename__ = "items"
    id: int = Field(primary_key=True)
"""
ROUTER = """
from fastapi import APIRouter

router = APIRouter(prefix="/items", tags=["items"])


@router.get("/export")
async def export() -> None:
    return None
"""
HEALTH = """
from fastapi import APIRouter

router = APIRouter(tags=["health"])


@router.get("/health")
async def health() -> None:
    return None
"""


def revision_file(revision: str, down: Any, annotated: bool = True) -> str:
    if annotated:
        return f"revision: str = {revision!r}\ndown_revision: str | None = {down!r}\n"
    return f"revision = {revision!r}\ndown_revision = {down!r}\n"


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def make_project(root: Path, **answers: Any) -> Path:
    """A project as `backforge new` leaves it, as far as `add resource` reads it."""
    base = {
        "_commit": "0.1.0",
        "_src_path": "/nowhere",
        "project_name": "Shop",
        "database": "sqlite",
        "auth": "jwt",
        "multi_tenant": False,
        "features": [],
        **answers,
    }
    write(root / ".copier-answers.yml", yaml.safe_dump(base))
    write(root / "app/models/item.py", MODEL)
    write(root / "app/routers/items.py", ROUTER)
    write(root / "app/routers/health.py", HEALTH)
    write(root / "migrations/versions/core_0001_items.py", revision_file("core_0001", None))
    write(
        root / "migrations/versions/auth_0001_users.py",
        revision_file("auth_0001", "core_0001", annotated=False),
    )
    return root


def add_resource_answers(root: Path, name: str, **answers: Any) -> None:
    data = {
        "_commit": "0.1.0+abc",
        "_src_path": "/nowhere",
        "resource": name,
        "plural": f"{name}s",
        "class_name": class_name_of(name),
        "table": f"{name}s",
        "url": f"{name}s",
        "tag": f"{name}s",
        "fields": [{"name": "title", "type": "str", "optional": False, "length": 10}],
        "scope": "owner",
        **answers,
    }
    write(root / f".copier-answers.resource-{name}.yml", yaml.safe_dump(data))


def test_alembic_heads_are_read_without_importing(tmp_path: Path) -> None:
    versions = tmp_path / "migrations/versions"
    write(versions / "a.py", revision_file("core_0001", None))
    write(versions / "b.py", revision_file("auth_0001", "core_0001"))
    write(versions / "c.py", revision_file("tenancy_0001", "auth_0001", annotated=False))
    write(versions / "d.py", revision_file("email_0001", "auth_0001"))
    write(versions / "e.py", "import does_not_exist\n" + revision_file("x_0001", "core_0001"))
    assert alembic_heads(tmp_path) == ["email_0001", "tenancy_0001", "x_0001"]
    write(versions / "f.py", revision_file("merge_0001", ("email_0001", "tenancy_0001")))
    write(versions / "g.py", revision_file("merge_0002", ["x_0001", "merge_0001"]))
    assert alembic_heads(tmp_path) == ["merge_0002"]
    assert alembic_heads(tmp_path / "empty") == []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("down_revision = None\n", "has no literal `revision"),
        ("revision = 'x'\ndown_revision = 3\n", "down_revision must be None"),
        ("revision = (\n", "cannot be read as an Alembic revision"),
    ],
)
def test_unreadable_revisions_are_refused(tmp_path: Path, text: str, message: str) -> None:
    write(tmp_path / "migrations/versions/bad.py", text)
    with pytest.raises(UsageError) as raised:
        alembic_heads(tmp_path)
    assert message in str(raised.value)


def test_taken_names(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    add_resource_answers(project, "customer", url="clients", table="client_rows")
    taken = taken_names(project, resource_answers(project))
    assert {"item", "customer", "customers"} <= set(taken.resources)
    assert {"Item", "Customer"} <= set(taken.classes)
    assert {"items", "client_rows"} <= set(taken.tables)
    assert {"items", "health", "clients"} <= set(taken.routes)
    assert "export" not in taken.routes  # below the /items prefix
    assert taken.revisions == {"core_0001", "auth_0001"} | BASE_REVISIONS


def test_a_plan_holds_the_contract_answers(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    add_resource_answers(project, "customer")
    plan = plan_resource(
        project,
        "line_item",
        ["title:str(120)", "notes:text?", "customer:ref(customer)", "buyer:ref(user)?"],
        search=["title", "notes"],
        sort=["title", "created_at"],
    )
    assert plan.answers == {
        "resource": "line_item",
        "plural": "line_items",
        "class_name": "LineItem",
        "table": "line_items",
        "url": "line-items",
        "tag": "line-items",
        "fields": [
            {"name": "title", "type": "str", "optional": False, "length": 120},
            {"name": "notes", "type": "text", "optional": True},
            {"name": "customer", "type": "ref", "optional": False, "target": "customer"},
            {"name": "buyer", "type": "ref", "optional": True, "target": "user"},
        ],
        "search": ["title", "notes"],
        "sort": ["title"],
        "scope": "owner",
        "down_revisions": ["auth_0001"],
    }
    assert plan.answers_file == ".copier-answers.resource-line_item.yml"
    overridden = plan_resource(
        project,
        "person",
        ["name:str"],
        names=Names(plural="people", class_name="Human", table="humans", url="folks", tag="Folk"),
        scope="global",
    )
    assert {k: overridden.answers[k] for k in ("plural", "class_name", "table", "url", "tag")} == {
        "plural": "people",
        "class_name": "Human",
        "table": "humans",
        "url": "folks",
        "tag": "Folk",
    }


@pytest.mark.parametrize(
    ("name", "fields", "options", "answers", "message"),
    [
        ("Invoice", ["title:str"], {}, {}, "NAME 'Invoice' is not snake_case"),
        ("line__item", ["title:str"], {}, {}, "NAME 'line__item' is not snake_case"),
        ("invoice_", ["title:str"], {}, {}, "not snake_case"),
        ("2fa", ["title:str"], {}, {}, "not snake_case"),
        ("class", ["title:str"], {}, {}, "NAME 'class' is a Python keyword"),
        ("order", ["title:str"], {}, {}, "NAME 'order' is an SQL reserved word"),
        ("user", ["title:str"], {}, {}, "NAME 'user' is an SQL reserved word"),
        ("group", ["title:str"], {}, {}, "SQL reserved word"),
        ("select", ["title:str"], {}, {}, "SQL reserved word"),
        ("table", ["title:str"], {}, {}, "SQL reserved word"),
        ("x" * 41, ["title:str"], {}, {}, "at most 40"),
        ("invoice", [], {}, {}, "at least one --field"),
        ("item", ["title:str"], {}, {}, "NAME 'item' collides with a resource or model"),
        ("customer", ["title:str"], {}, {}, "NAME 'customer' collides"),
        ("invoice", ["title:str"], {"names": Names(table="items")}, {}, "--table 'items' collides"),
        ("invoice", ["title:str"], {"names": Names(url="items")}, {}, "--url 'items' collides"),
        ("probe", ["title:str"], {"names": Names(url="health")}, {}, "--url 'health' collides"),
        ("invoice", ["title:str"], {"names": Names(class_name="Item")}, {}, "--class-name 'Item'"),
        ("invoice", ["title:str"], {"names": Names(class_name="item")}, {}, "must be CamelCase"),
        ("invoice", ["title:str"], {"names": Names(plural="invoice")}, {}, "must differ"),
        ("invoice", ["title:str"], {"names": Names(url="In_voices")}, {}, "one URL path segment"),
        ("invoice", ["title:str"], {"names": Names(tag="")}, {}, "--tag '' must be 1 to 60"),
        ("invoice", ["title:str"], {"names": Names(plural="")}, {}, "--plural '' is not snake"),
        ("invoice", ["title:str"], {"names": Names(tag="#x")}, {}, "--tag '#x'"),
        ("invoice", ["title:str", "title:int"], {}, {}, "column 'title' is already used"),
        ("invoice", ["customer:ref(customer)", "customer_id:uuid"], {}, {}, "'customer_id'"),
        ("invoice", ["title:str"], {"search": ["nope"]}, {}, "--search 'nope' names no field"),
        ("invoice", ["n:int"], {"search": ["n"]}, {}, "--search 'n': a int field cannot"),
        ("invoice", ["t:text"], {"sort": ["t"]}, {}, "--sort 't': a text field cannot"),
        ("invoice", ["t:str"], {"sort": ["t", "t"]}, {}, "--sort 't' is given twice"),
        ("invoice", ["c:ref(customer)"], {"sort": ["c"]}, {}, "a ref field cannot"),
        ("invoice", ["c:ref(vendor)"], {}, {}, "ref(vendor) names no resource"),
        ("invoice", ["c:ref(item)"], {}, {}, "ref(item) names no resource"),
        ("invoice", ["c:ref(invoice)"], {}, {}, "cannot reference itself"),
        ("invoice", ["o:ref(user)"], {}, {"auth": "none"}, "ref(user) needs auth=jwt"),
        ("invoice", ["t:str"], {"scope": "team"}, {}, "--scope 'team' is not one of"),
        ("invoice", ["t:str"], {"scope": "organization"}, {}, "needs a multi-tenant project"),
        ("invoice", ["t:str"], {"scope": "owner"}, {"auth": "none"}, "needs auth=jwt"),
        (
            "invoice",
            [f"{'c' * 30}:ref(customer)"],
            {"names": Names(table="t" * 30)},
            {},
            "the index name",
        ),
        (
            "invoice",
            [f"{'c' * 25}:ref(customer)"],
            {"names": Names(table="t" * 25)},
            {},
            "foreign key",
        ),
    ],
)
def test_bad_resources_are_refused_naming_the_rule(
    tmp_path: Path,
    name: str,
    fields: list[str],
    options: dict[str, Any],
    answers: dict[str, Any],
    message: str,
) -> None:
    project = make_project(tmp_path, **answers)
    add_resource_answers(project, "customer")
    with pytest.raises(UsageError) as raised:
        plan_resource(project, name, fields, **options)
    assert message in str(raised.value)


def test_a_file_the_resource_would_render_must_not_exist(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    write(project / "tests/test_invoices.py", "")
    with pytest.raises(UsageError, match=re.escape("tests/test_invoices.py already exists")):
        plan_resource(project, "invoice", ["title:str"])
    write(project / "migrations/versions/invoice_0001_x.py", revision_file("invoice_0001", None))
    with pytest.raises(UsageError, match="already has revision 'invoice_0001'"):
        plan_resource(project, "invoice", ["title:str"])


def test_organization_scope_and_ref_user_in_a_multi_tenant_project(tmp_path: Path) -> None:
    project = make_project(tmp_path, multi_tenant=True)
    plan = plan_resource(project, "invoice", ["o:ref(user)"])
    assert plan.answers["scope"] == "organization"
    assert [f for f in plan.files if f.startswith("migrations/")] == [
        "migrations/versions/invoice_0001_invoices.py",
        "migrations/versions/invoice_owner_invoices.py",
        "migrations/versions/invoice_tenancy_invoices.py",
    ]


def test_not_a_backforge_project(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="is not a backforge project: it has no"):
        plan_resource(tmp_path, "invoice", ["title:str"])
    write(tmp_path / ".copier-answers.yml", "project_name: X\n")
    with pytest.raises(
        UsageError, match=re.escape("its .copier-answers.yml has no database, auth")
    ):
        plan_resource(tmp_path, "invoice", ["title:str"])


# ---------------------------------------------------------------------------------------------
# The CLI refuses with exit 2 and writes nothing
# ---------------------------------------------------------------------------------------------


def committed_project(root: Path) -> Path:
    make_project(root)
    git(root, "init", "--quiet")
    git(root, "add", "-A")
    git(root, "commit", "--quiet", "-m", "init")
    return root


def files(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and ".git" not in p.parts
    }


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["order", "--field", "title:str"], "NAME 'order' is an SQL reserved word"),
        (["invoice", "--field", "count:int=abc"], "field 'count': default 'abc' does not fit int"),
        (["invoice", "--field", "t:str", "--search", "x"], "--search 'x' names no field"),
        (["invoice", "--field", "c:ref(customer)"], "ref(customer) names no resource"),
        (["invoice", "--field", "t:str", "--scope", "organization"], "multi-tenant"),
    ],
)
def test_add_resource_refuses_bad_input_with_exit_2(
    tmp_path: Path, args: list[str], message: str
) -> None:
    project = committed_project(tmp_path / "shop")
    before = files(project)
    result = runner.invoke(app, ["add", "resource", *args, "--project", str(project)])
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split())
    assert files(project) == before
    assert git(project, "status", "--porcelain") == ""


def test_add_resource_refuses_a_dirty_tree(tmp_path: Path) -> None:
    project = committed_project(tmp_path / "shop")
    write(project / "scratch.txt", "wip")
    result = runner.invoke(
        app, ["add", "resource", "invoice", "-f", "title:str", "-C", str(project)]
    )
    assert result.exit_code == 2, result.output
    assert "uncommitted changes" in result.output
    assert "?? scratch.txt" in result.output
    assert not (project / "app/models/invoice.py").exists()


def test_add_resource_refuses_a_folder_that_is_not_a_project(tmp_path: Path) -> None:
    result = runner.invoke(app, ["add", "resource", "invoice", "-f", "t:str", "-C", str(tmp_path)])
    assert result.exit_code == 2
    assert "is not a backforge project" in result.output
    assert list(tmp_path.iterdir()) == []


def test_resources_lists_nothing_or_refuses(tmp_path: Path) -> None:
    project = make_project(tmp_path / "shop")
    result = runner.invoke(app, ["resources", str(project)])
    assert result.exit_code == 0, result.output
    assert "has no resources yet" in " ".join(result.output.split())
    result = runner.invoke(app, ["resources", str(tmp_path)])
    assert result.exit_code == 2
    assert "is not a backforge project" in result.output


def test_the_base_templates_names_are_reserved_in_every_variant(tmp_path: Path) -> None:
    """Names of the fullest variant are taken even in a project without those capabilities."""
    full = tmp_path / "full"
    render(
        str(REPO),
        full,
        {
            "project_name": "Full",
            "auth": "jwt",
            "multi_tenant": True,
            "features": [
                *["cache", "rate_limit", "websockets", "jobs", "email", "metrics", "sentry"],
                "billing",
                "audit",
                "admin",
                "oidc",
                "totp",
            ],
        },
        quiet=True,
        skip_tasks=True,
    )
    rendered = taken_names(full, {})
    for kind, names in BASE_NAMES.items():
        assert set(getattr(rendered, kind)) <= names, kind
    assert set(revisions(full)) == BASE_REVISIONS
    project = make_project(tmp_path / "shop", auth="none")
    with pytest.raises(UsageError) as raised:
        plan_resource(project, "organization", ["title:str"], scope="global")
    assert "NAME 'organization' collides with a resource or model the project already has " in str(
        raised.value
    )
    assert "an update may add it later" in str(raised.value)
    with pytest.raises(UsageError, match="already has revision 'tenancy_0001', or the base"):
        plan_resource(project, "tenancy", ["title:str"], scope="global")


@pytest.mark.parametrize(
    ("resource", "scope"),
    [
        ({"scope": "owner", "multi_tenant": False}, "organization"),
        ({"scope": "global", "multi_tenant": False}, None),
        ({"scope": "owner", "multi_tenant": True}, None),
    ],
)
def test_switching_multi_tenant_on_makes_owner_scoped_resources_organization_scoped(
    resource: dict[str, Any], scope: str | None
) -> None:
    """Only an owner-scoped resource rendered before the switch changes scope (a global one
    stays global; one added as owner-scoped to a multi-tenant project was chosen so)."""
    project = {"database": "sqlite", "auth": "jwt", "multi_tenant": True, "features": ["cache"]}
    data = resource_update_data(project, resource)
    assert data.get("scope") == scope
    assert {k: v for k, v in data.items() if k != "scope"} == project
    assert "scope" not in resource_update_data({**project, "multi_tenant": False}, resource)


# ---------------------------------------------------------------------------------------------
# What a rendered resource imports must exist in the project
# ---------------------------------------------------------------------------------------------


def test_missing_imports_names_what_neither_the_project_nor_the_resource_provides(
    tmp_path: Path,
) -> None:
    project, staging = tmp_path / "project", tmp_path / "staging"
    write(project / "app/__init__.py", "")
    write(project / "app/core/__init__.py", "")
    write(
        project / "app/core/things.py",
        "import typing\nfrom x import Alias as Renamed\nA = 1\nB: int = 2\n"
        "if typing.TYPE_CHECKING:\n    C = 3\nelse:\n    D = 4\n"
        "try:\n    E = 5\nexcept ImportError:\n    F = 6\n"
        "def f() -> None: ...\nasync def g() -> None: ...\nclass K: ...\n",
    )
    write(project / "app/core/sub.py", "")
    write(project / "app/star.py", "from app.core.things import *\n")
    write(project / "app/lazy.py", "def __getattr__(name: str) -> object: ...\n")
    write(staging / "app/models/invoice.py", "class Invoice: ...\n")
    imports = (
        "from app.core.things import A, B, C, D, E, F, f, g, K, Renamed, typing\n"
        "from app.core import sub, things\n"
        "from app.star import anything\n"
        "from app.lazy import whatever\n"
        "from app.models.invoice import Invoice\n"
        "from os import path\n"
        "from .relative import nothing\n"
    )
    write(staging / "app/routers/invoices.py", imports)
    write(staging / "app/notes.txt", "from app.nowhere import x\n")
    rendered = ["app/models/invoice.py", "app/routers/invoices.py", "app/notes.txt"]
    assert missing_imports(project, staging, rendered) == []

    write(
        staging / "app/routers/invoices.py",
        imports + "from app.core.things import gone, A\nfrom app.nowhere import x\n"
        "from app.models.invoice import InvoiceRow\n",
    )
    assert missing_imports(project, staging, rendered) == [
        "app.core.things.gone",
        "app.models.invoice.InvoiceRow",
        "app.nowhere",
    ]
