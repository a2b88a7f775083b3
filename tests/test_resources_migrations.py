"""Resources rendered by the REAL resource template (resource/) through `backforge update`, on a
migrated SQLite database holding rows of two users:

- a base template update with resources present (0.1.0 -> 0.2.0): no conflict, the resources'
  files untouched; then a newer resource template version that adds a column (a copy of
  resource/ with a `<resource>_0002` revision and the model's column): every resource gets its
  new revision, every applied revision file stays byte-identical, the rows are kept, a user's
  edit in a resource's model is merged, `alembic check` is clean;
- `multi_tenant` switched on with owner-scoped resources and a global one: the owner-scoped ones
  become organization-scoped and each row gets its owner's personal organization, like items (a
  row whose owner belongs to no organization is refused first); the global one stays global;
  `alembic check` is clean and the resources' own tests pass. A global resource made
  owner-scoped by hand (plain Copier) has its owner revision refuse the table's ownerless rows.

Slow (two tests, 40 to 55 s each on a busy 2-core machine): they need a project environment to
run Alembic and the resources' tests.
One environment is installed for the module (a jwt SQLite project has every dependency these
projects need; `package = false`, so each project's `app` is imported from its own folder) and
every project runs its migrations in it, rather than one `uv sync` per project.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import copier
import pytest
from test_resources_update import answers, cli
from test_update import NEW, OLD, TemplateRepo, build_template_repo, commit_all, git, render_at

from backforge.commands import install
from backforge.resources import template as resource_source

REPO = Path(__file__).resolve().parent.parent
VERSIONS = "migrations/versions"
USERS = ("alice@example.com", "bob@example.com")
STAMP = "2026-01-01 00:00:00.000000"
CREATED_AT = (
    "    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)\n"
)
REVIEWS_LINE = "    reviews: int | None = None\n"
SECOND_REVISION = '''"""{{ class_name }}: a review count (the resource template's second version).

Revision ID: {{ resource }}_0002
Revises: {{ resource }}_0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "{{ resource }}_0002"
down_revision: str | Sequence[str] | None = "{{ resource }}_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("{{ table }}", sa.Column("reviews", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("{{ table }}") as batch:
        batch.drop_column("reviews")
'''
NOTE = "INSERT INTO notes (id, body, created_at, updated_at) VALUES (?, ?, ?, ?)"
MOVE_MEMBERSHIP = "UPDATE memberships SET user_id = ? WHERE user_id = ?"
USER_DOCSTRING = '"""Our customers (edited by the team)."""'

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> TemplateRepo:
    return build_template_repo(tmp_path_factory.mktemp("template") / "backforge")


@pytest.fixture(scope="module")
def venv(repo: TemplateRepo, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One installed project environment, shared by every project of this module."""
    project = render_at(repo, tmp_path_factory.mktemp("env") / "env", OLD, {})
    install(project)
    return project / ".venv"


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh resource cache."""
    monkeypatch.setenv("BACKFORGE_HOME", str(tmp_path / "home"))
    yield tmp_path / "home"


def run(
    venv: Path, project: Path, *command: str, database: Path | None = None, fails: bool = False
) -> str:
    """A command of the shared environment in `project`; its output. It must succeed (or, with
    `fails`, fail)."""
    env = {**os.environ, "ENVIRONMENT": "test"}
    env.pop("VIRTUAL_ENV", None)
    if database is not None:
        env["DATABASE_URL"] = f"sqlite:///{database}"
    result = subprocess.run(
        [str(venv / "bin" / command[0]), *command[1:]],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    output = result.stdout + result.stderr
    assert (result.returncode != 0) == fails, f"{' '.join(command)}:\n{output[-6000:]}"
    return output


MIGRATE_AND_CHECK = "from alembic.config import main; main(['upgrade', 'heads']); main(['check'])"


def migrate_and_check(venv: Path, project: Path, database: Path) -> None:
    """`alembic upgrade heads` and `alembic check` (in one process: the app is imported once)."""
    output = run(venv, project, "python", "-c", MIGRATE_AND_CHECK, database=database)
    assert "No new upgrade operations detected" in output, output


def add_customer_and_invoice(project: Path) -> None:
    for args in (
        ["customer", "-f", "name:str(80)", "--search", "name"],
        ["invoice", "-f", "number:str(20)", "-f", "customer:ref(customer)"],
    ):
        code, output = cli("add", "resource", *args, "--no-install", "-C", str(project))
        assert code == 0, output


def store_rows(database: Path) -> dict[str, list[tuple[str, str]]]:
    """Two users; customers and invoices of each: {table: [(row id, owner id)]}."""
    rows: dict[str, list[tuple[str, str]]] = {"customers": [], "invoices": []}
    with sqlite3.connect(database) as db:
        for number, email in enumerate(USERS):
            user = uuid.uuid4().hex
            db.execute(
                "INSERT INTO users (id, email, hashed_password, full_name, role, is_active,"
                " created_at, updated_at) VALUES (?, ?, 'x', NULL, 'user', 1, ?, ?)",
                (user, email, STAMP, STAMP),
            )
            for index in range(number + 1):
                customer, invoice = uuid.uuid4().hex, uuid.uuid4().hex
                db.execute(
                    "INSERT INTO customers (id, name, owner_id, created_at, updated_at)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (customer, f"{email} {index}", user, STAMP, STAMP),
                )
                db.execute(
                    "INSERT INTO invoices (id, number, customer_id, owner_id, created_at,"
                    " updated_at) VALUES (?, ?, ?, ?, ?, ?)",
                    (invoice, f"N{number}{index}", customer, user, STAMP, STAMP),
                )
                rows["customers"].append((customer, user))
                rows["invoices"].append((invoice, user))
    return rows


def revision_files(project: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in (project / VERSIONS).glob("*.py")}


def assert_kept(before: dict[str, bytes], project: Path) -> None:
    after = revision_files(project)
    assert {name: after.get(name) for name in before} == before, "an applied revision changed"


def test_base_then_resource_template_updates_reach_every_resource(
    repo: TemplateRepo,
    venv: Path,
    home: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    folder = tmp_path / "resource"
    shutil.copytree(REPO / "resource", folder, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(resource_source, "resource_folder", lambda: folder)
    project = render_at(repo, tmp_path / "shop", OLD, {})
    add_customer_and_invoice(project)
    database = tmp_path / "shop.db"
    migrate_and_check(venv, project, database)
    rows = store_rows(database)
    model = project / "app/models/customer.py"
    lines = model.read_text().splitlines(keepends=True)
    model.write_text(USER_DOCSTRING + "\n" + "".join(lines[1:]))
    commit_all(project, "Our docstring")
    applied = revision_files(project)
    resource_files = [
        path for path in git(project, "ls-files").split() if "customer" in path or "invoice" in path
    ]
    assert len(resource_files) > 10, resource_files

    # (b) The base template's update with resources present: no conflict, resources untouched.
    code, output = cli("update", str(project), "--vcs-ref", NEW, "--no-install", "--trust")
    assert code == 0, output
    assert "conflict" not in output.lower(), output
    changed = git(project, "status", "--porcelain").splitlines()
    assert not [line for line in changed if line[3:] in resource_files], changed
    assert_kept(applied, project)
    migrate_and_check(venv, project, database)
    commit_all(project, "Base template 0.2.0")
    applied = revision_files(project)

    # (a) A newer resource template that adds a column: every resource gets its revision.
    template = folder / "template"
    (template / VERSIONS / "{{ resource }}_0002_{{ table }}.py.jinja").write_text(SECOND_REVISION)
    model_template = template / "app/models/{{ resource }}.py.jinja"
    text = model_template.read_text()
    assert CREATED_AT in text
    model_template.write_text(text.replace(CREATED_AT, REVIEWS_LINE + CREATED_AT))
    tag_before = answers(project, "customer")["_commit"]
    code, output = cli("update", str(project), "--vcs-ref", NEW, "--no-install", "--trust")
    assert code == 0, output
    for name, table in (("customer", "customers"), ("invoice", "invoices")):
        assert answers(project, name)["_commit"] != tag_before
        assert f"{name}_0002_{table}.py" in revision_files(project)
        assert REVIEWS_LINE in (project / f"app/models/{name}.py").read_text()
    assert model.read_text().startswith(USER_DOCSTRING + "\n"), "the user's edit was lost"
    assert_kept(applied, project)
    migrate_and_check(venv, project, database)
    with sqlite3.connect(database) as db:
        for table, stored in rows.items():
            kept = db.execute(f"SELECT id, owner_id, reviews FROM {table}").fetchall()  # noqa: S608
            assert sorted(kept) == sorted((row, owner, None) for row, owner in stored)


def test_multi_tenant_switched_on_moves_resource_rows_into_personal_organizations(
    repo: TemplateRepo, venv: Path, home: Path, tmp_path: Path
) -> None:
    project = render_at(repo, tmp_path / "shop", OLD, {})
    add_customer_and_invoice(project)
    code, output = cli(
        "add", "resource", "note", "-f", "body:str(200)", "--scope", "global", "--no-install",
        "-C", str(project),
    )  # fmt: skip
    assert code == 0, output
    assert answers(project, "customer")["scope"] == "owner"
    database = tmp_path / "shop.db"
    migrate_and_check(venv, project, database)
    rows = store_rows(database)
    with sqlite3.connect(database) as db:
        db.execute(NOTE, (uuid.uuid4().hex, "a note everyone reads", STAMP, STAMP))
    applied = revision_files(project)

    code, output = cli(
        "update", str(project), "--vcs-ref", OLD, "-d", "multi_tenant=true", "--no-install",
        "--trust",
    )  # fmt: skip
    assert code == 0, output
    for name, table in (("customer", "customers"), ("invoice", "invoices")):
        assert answers(project, name)["scope"] == "organization"
        assert answers(project, name)["multi_tenant"] is True
        assert f"{name}_tenancy_{table}.py" in revision_files(project)
    assert answers(project, "note")["scope"] == "global"
    assert not [name for name in revision_files(project) if name.startswith("note_owner")]
    assert_kept(applied, project)

    # The base's tenancy revision applied first (a deployment between two updates): a row whose
    # owner has left every organization is refused before anything changes, then goes through.
    run(venv, project, "alembic", "upgrade", "tenancy_0001", database=database)
    with sqlite3.connect(database) as db:
        bob = db.execute("SELECT id FROM users WHERE email = ?", (USERS[1],)).fetchone()[0]
        nobody = uuid.uuid4().hex  # bob's membership moved away (SQLite checks no foreign key)
        db.execute(MOVE_MEMBERSHIP, (nobody, bob))
    output = run(venv, project, "alembic", "upgrade", "heads", database=database, fails=True)
    assert f"rows owned by user {uuid.UUID(bob)}, who belongs to no organization" in output
    with sqlite3.connect(database) as db:
        columns = [row[1] for row in db.execute("PRAGMA table_info(customers)")]
        assert "organization_id" not in columns
        db.execute(MOVE_MEMBERSHIP, (bob, nobody))
    migrate_and_check(venv, project, database)
    with sqlite3.connect(database) as db:
        personal = dict(db.execute("SELECT user_id, organization_id FROM memberships").fetchall())
        assert len(personal) == len(USERS) and len(set(personal.values())) == len(USERS)
        for table, stored in rows.items():
            moved = db.execute(f"SELECT id, organization_id FROM {table}").fetchall()  # noqa: S608
            assert sorted(moved) == sorted((row, personal[owner]) for row, owner in stored)
    commit_all(project, "multi_tenant on")
    tests = ("tests/test_customers.py", "tests/test_invoices.py")
    run(venv, project, "pytest", "-q", "-p", "no:cacheprovider", "--no-cov", *tests)

    # A global resource's rows have no owner to give them: plain Copier can make its scope
    # owner, and its owner revision then refuses the table, before changing anything.
    copier.run_update(
        str(project),
        answers_file=".copier-answers.resource-note.yml",
        data={"scope": "owner"},
        defaults=True,
        overwrite=True,
        unsafe=True,
        quiet=True,
    )
    assert "note_owner_notes.py" in revision_files(project)
    output = run(venv, project, "alembic", "upgrade", "heads", database=database, fails=True)
    assert "the notes table has rows, and none of them has an owner" in output
