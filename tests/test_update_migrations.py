"""Schema evolution through `backforge update`: applied revisions never change, data survives.

A temporary git repository of this template is tagged twice:

- `0.1.0`: the template as it is in the working tree;
- `0.2.0`: a template revision `core_0002` (an index on items.updated_at) and the model change
  that goes with it: a newer template version that grows the schema.

Each scenario renders a project at 0.1.0, installs it (one uv environment per scenario), migrates
it, stores rows through the API, adds a model (one new file) and a revision of its own (a `notes`
table) and commits. Then it updates (a) to 0.2.0, and (b) switches on, one at a time, each
capability that the project does not have yet (auth=jwt, then multi_tenant; then the email feature,
whose revision marks the existing users verified: they sign in with EMAIL_VERIFICATION_REQUIRED
on). After every update: `alembic upgrade heads` (the command the rendered README gives), `alembic
check` clean, every revision file that existed before the update byte-identical, no conflict, the
user's table and every row still there (read through the API, as their owner), ruff clean and the
rendered migration tests green; at the end of each scenario, mypy --strict clean. (Whole rendered
suites: the full tier runs them over `pairwise`, and test_update_variants proves that an update
renders exactly a fresh render.)

SQLite runs one scenario per distinct (auth, multi_tenant) of the pairwise set (the answers that
decide the migration chain); PostgreSQL and MariaDB run the longest chain each.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import re
import subprocess
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from test_update import (
    TemplateRepo,
    answers_of,
    commit_all,
    git,
    render_at,
    tagged_template_copy,
)

from backforge.commands import install
from backforge.model import default_answers, load_questions, select, variant_id
from backforge.servers import ServerPool, available
from backforge.update import REVISION_FEATURES, update_project

MAIN = Path(__file__).resolve().parents[1]
OLD, NEW = "0.1.0", "0.2.0"
VERSIONS = "migrations/versions"
DEFAULTS = default_answers(MAIN)
JOBS = 3
"""Scenarios at a time: each one waits on its processes (uv, alembic, the API probe, pytest) more
than it computes, so three share two cores well (the three SQLite scenarios took 112 s two at a
time in CI, the third starting when the first ended)."""

CORE_0002 = '''"""Items are listed by last change: index items.updated_at.

Revision ID: core_0002
Revises: core_0001
Create Date: 2026-02-01
"""

from collections.abc import Sequence

from alembic import op

revision: str = "core_0002"
down_revision: str | None = "core_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(op.f("ix_items_updated_at"), "items", ["updated_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_items_updated_at"), table_name="items")
'''
UPDATED_AT = "updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)"
UPDATED_AT_INDEXED = (
    "updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)"
)

NOTE_MODEL = '''from sqlmodel import Field, SQLModel


class Note(SQLModel, table=True):
    """The project's own table, added after rendering."""

    __tablename__ = "notes"

    id: int | None = Field(default=None, primary_key=True)
    body: str = Field(max_length=200)
'''
ITEM_NAMES = ("anvil", "bellows", "crucible")
USER_EMAIL, USER_PASSWORD = "alice@example.com", "a long passphrase for the tests 42"
ADMIN_EMAIL, ADMIN_PASSWORD = "owner@example.com", "the first superuser's passphrase"

# Runs inside the rendered project's environment: stores and reads rows through its API.
PROBE = """
import asyncio, importlib.util, json, sys
from httpx import ASGITransport, AsyncClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from app.core.config import Settings
from app.db.url import to_async_url
from app.main import create_app

command, url = sys.argv[1], sys.argv[2]
arguments = json.loads(sys.argv[3])
cheap = {"argon2_time_cost": 1, "argon2_memory_cost_kib": 1024, "argon2_parallelism": 1}
extra = {k: v for k, v in cheap.items() if k in Settings.model_fields}


async def sql(statement):
    engine = create_async_engine(to_async_url(url))
    try:
        async with engine.begin() as connection:
            result = await connection.execute(text(statement))
            return [list(row) for row in result.all()] if result.returns_rows else []
    finally:
        await engine.dispose()


async def login(http, email, password):
    response = await http.post("/api/v1/auth/token", data={"username": email, "password": password})
    assert response.status_code == 200, response.text
    return {"Authorization": "Bearer " + response.json()["access_token"]}


async def item_names(http, headers):
    response = await http.get("/api/v1/items", params={"limit": 100}, headers=headers)
    assert response.status_code == 200, response.text
    return sorted(item["name"] for item in response.json()["items"])


async def main():
    settings = Settings(_env_file=None, environment="test", database_url=url, **extra)
    app = create_app(settings)
    auth = importlib.util.find_spec("app.models.user") is not None
    tenants = importlib.util.find_spec("app.models.organization") is not None
    async with app.router.lifespan_context(app):
        transport = ASGITransport(app=app)
        async with AsyncClient(transport=transport, base_url="http://testserver") as http:
            if command == "seed":
                headers = {}
                if auth:
                    email, password = arguments["email"], arguments["password"]
                    response = await http.post(
                        "/api/v1/auth/register", json={"email": email, "password": password}
                    )
                    assert response.status_code == 201, response.text
                    headers = await login(http, email, password)
                if tenants:
                    response = await http.post(
                        "/api/v1/organizations", json={"name": "Acme"}, headers=headers
                    )
                    assert response.status_code == 201, response.text
                    headers["X-Organization-ID"] = response.json()["id"]
                for name in arguments["items"]:
                    response = await http.post(
                        "/api/v1/items", json={"name": name}, headers=headers
                    )
                    assert response.status_code == 201, response.text
                return {}
            if command == "note":
                await sql("INSERT INTO notes (body) VALUES ('" + arguments["body"] + "')")
                return {}
            seen = {}
            if not auth:
                seen["anonymous"] = await item_names(http, {})
            for email, password in arguments["logins"]:
                headers = await login(http, email, password)
                if not tenants:
                    seen[email] = await item_names(http, headers)
                    continue
                response = await http.get("/api/v1/organizations", headers=headers)
                assert response.status_code == 200, response.text
                for organization in response.json():
                    scoped = {**headers, "X-Organization-ID": organization["id"]}
                    seen[email + " in " + organization["name"]] = await item_names(http, scoped)
            return {
                "seen": seen,
                "items": (await sql("SELECT COUNT(*) FROM items"))[0][0],
                "notes": [row[0] for row in await sql("SELECT body FROM notes ORDER BY id")],
            }


print(json.dumps(asyncio.run(main())))
"""


# ---------------------------------------------------------------------------------------------
# The template repository
# ---------------------------------------------------------------------------------------------


def build_growing_template(root: Path) -> TemplateRepo:
    """This template tagged 0.1.0, then 0.2.0 with a new core revision and its model change."""
    tagged_template_copy(root)
    # The base's item model is the resource template's model (resource/items.jinja).
    model = root / "resource/template/app/models/{{ resource }}.py.jinja"
    text = model.read_text(encoding="utf-8")
    assert UPDATED_AT in text, "the resource model's updated_at line moved: update this test"
    model.write_text(text.replace(UPDATED_AT, UPDATED_AT_INDEXED), encoding="utf-8")
    (root / "template" / VERSIONS / "core_0002_items_updated_at.py").write_text(CORE_0002)
    commit_all(root, "Template 0.2.0: index items.updated_at")
    git(root, "tag", NEW)
    return TemplateRepo(root, frozenset())


CAPABILITY_ANSWERS = frozenset({"auth", "multi_tenant", "features"})
"""The answers a revision file's name may depend on: the ones that can be switched on."""
FEATURES = next(q for q in load_questions(MAIN) if q.name == "features").choices


def test_template_revisions_depend_on_no_answer_that_can_change() -> None:
    """Contents are plain Python (no Jinja); names depend only on capabilities that can be
    switched on, never on `database` or any other answer."""
    folder = MAIN / "template" / VERSIONS
    revisions = sorted(folder.iterdir())
    assert revisions, "the template has no revisions"
    identifiers = []
    for path in revisions:
        text = path.read_text(encoding="utf-8")
        assert not path.name.endswith(".jinja"), f"{path.name} is rendered by Jinja"
        assert "{{" not in text and "{%" not in text, f"{path.name} holds Jinja"
        named = set(re.findall(r"\b([a-z_]+)\b", "".join(re.findall(r"{%(.*?)%}", path.name))))
        words = {"if", "endif", "and", "in", "jwt", "true", "false", *FEATURES}
        assert named - words <= CAPABILITY_ANSWERS, path.name
        match = re.search(r'^revision: str = "([^"]+)"$', text, re.M)
        assert match, f"{path.name} has no revision identifier"
        identifiers.append(match.group(1))
    assert len(set(identifiers)) == len(identifiers), identifiers


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> TemplateRepo:
    return build_growing_template(tmp_path_factory.mktemp("template") / "backforge")


# ---------------------------------------------------------------------------------------------
# One project, its database and the commands run in it
# ---------------------------------------------------------------------------------------------


@dataclass
class Project:
    path: Path
    url: str
    probe: Path
    logins: list[tuple[str, str]] = field(default_factory=list)
    steps: list[str] = field(default_factory=list)

    def env(self, extra: Mapping[str, str]) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("FIRST_SUPERUSER_", "VIRTUAL_ENV", "DATABASE_URL"))
        }
        env.update(DATABASE_URL=self.url, ENVIRONMENT="test", PYTHONPATH=str(self.path))
        # Once email is on, the users seeded before it must still sign in (email_0001 marks
        # them verified); the rendered suite pins its own value.
        env.update(EMAIL_VERIFICATION_REQUIRED="true")
        env.update(extra)
        return env

    def run(
        self, *command: str, ok: bool = True, extra: Mapping[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """A command of the project's environment (`.venv/bin/<command>`) in the project."""
        result = subprocess.run(
            [str(self.path / ".venv/bin" / command[0]), *command[1:]],
            cwd=self.path,
            env=self.env(extra or {}),
            capture_output=True,
            text=True,
            check=False,
        )
        if ok:
            assert result.returncode == 0, (
                f"{' '.join(command)} exited {result.returncode} in {self.path}:\n"
                f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
            )
        return result

    def api(self, command: str, arguments: Mapping[str, Any]) -> dict[str, Any]:
        out = self.run("python", str(self.probe), command, self.url, json.dumps(arguments))
        loaded = json.loads(out.stdout.strip().splitlines()[-1])
        assert isinstance(loaded, dict)
        return loaded

    def pytest(self, *paths: str) -> int:
        """Run those tests of the project; how many passed. Without the coverage gate: it
        holds for a whole suite only, and the full tier checks it."""
        tests = self.run("pytest", "-q", "-x", "-p", "no:cacheprovider", "--no-cov", *paths)
        return int(re.findall(r"(\d+) passed", tests.stdout)[-1])

    def revision_files(self) -> dict[str, bytes]:
        folder = self.path / VERSIONS
        return {p.name: p.read_bytes() for p in sorted(folder.glob("*.py"))}

    def heads(self) -> list[str]:
        out = self.run("alembic", "heads").stdout
        return sorted(line.split()[0] for line in out.splitlines() if line.strip())


# ---------------------------------------------------------------------------------------------
# The scenario
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    answers: dict[str, Any]
    switches: tuple[dict[str, Any], ...]
    """The capabilities switched on one update at a time, after the version update."""

    @property
    def name(self) -> str:
        return variant_id(self.answers, DEFAULTS)


def _with_email(answers: Mapping[str, Any]) -> dict[str, Any]:
    """The `features` answer that adds email to what the scenario started with."""
    return {"features": [*answers.get("features", []), "email"]}


def _switches(answers: Mapping[str, Any]) -> tuple[dict[str, Any], ...]:
    if answers.get("auth") == "none":
        # Then email, over users who signed up before addresses were verified.
        return ({"auth": "jwt"}, {"multi_tenant": True}, _with_email(answers))
    if not answers.get("multi_tenant"):
        return ({"multi_tenant": True},)
    return ()


def sqlite_scenarios() -> list[Scenario]:
    """One scenario per distinct (auth, multi_tenant) of the pairwise set, on SQLite (so
    without kubernetes, which SQLite does not take). They start without the features that have
    revisions of their own (email, billing, audit: each is a second head, and the user's own
    revision below is written on one head, before any `alembic merge heads`); the scenario
    without auth switches email on last."""
    chosen: dict[tuple[Any, Any], dict[str, Any]] = {}
    for variant in select(MAIN, "pairwise"):
        key = (variant.get("auth"), bool(variant.get("multi_tenant")))
        features = [f for f in variant.get("features", []) if f not in REVISION_FEATURES]
        sqlite = {**variant, "database": "sqlite", "features": features}
        if "kubernetes" in variant:
            sqlite["kubernetes"] = False
        chosen.setdefault(key, sqlite)
    return [Scenario(answers, _switches(answers)) for answers in chosen.values()]


SERVER_SCENARIOS = [
    # auth switched on over PostgreSQL rows (the tenancy switch runs on MariaDB below; the
    # rendered suites' own data-migration tests run every dialect in the full tier).
    Scenario(
        {"database": "postgresql", "auth": "none", "docker": False, "ci": "none"},
        ({"auth": "jwt"},),
    ),
    Scenario(
        {"database": "mysql", "auth": "jwt", "docker": True, "ci": "github"},
        ({"multi_tenant": True}, {"features": ["email"]}),
    ),
]


def _expected_views(answers: Mapping[str, Any]) -> dict[str, list[str]]:
    """Who sees the seeded items through the API, given the project's answers now."""
    items = sorted(ITEM_NAMES)
    if answers.get("auth") != "jwt":
        return {"anonymous": items}
    owner = ADMIN_EMAIL if answers["_seeded_without_auth"] else USER_EMAIL
    if not answers.get("multi_tenant"):
        return {owner: items}
    if answers["_seeded_tenant"]:
        return {f"{USER_EMAIL} in Acme": items}
    # Switched on later: each user's personal organization is named after their e-mail.
    return {f"{owner} in {owner}": items}


def check_after_update(
    project: Project,
    before: Mapping[str, bytes],
    answers: Mapping[str, Any],
    label: str,
    started: float,
) -> None:
    """Everything issue 12 promises after one update, once it is committed."""
    after = project.revision_files()
    changed = sorted(name for name, content in before.items() if after.get(name) != content)
    assert not changed, f"{label}: revision files changed by the update: {changed}"
    extra = {}
    if answers.get("auth") == "jwt" and answers["_seeded_without_auth"]:
        if "auth_0001_users.py" in set(after) - set(before):
            # The failure path first: items exist and no first superuser is configured.
            refused = project.run("alembic", "upgrade", "heads", ok=False)
            assert refused.returncode != 0
            assert "FIRST_SUPERUSER_EMAIL and FIRST_SUPERUSER_PASSWORD" in refused.stderr
        extra = {"FIRST_SUPERUSER_EMAIL": ADMIN_EMAIL, "FIRST_SUPERUSER_PASSWORD": ADMIN_PASSWORD}
    project.run("alembic", "upgrade", "heads", extra=extra)
    project.run("alembic", "check")
    current = project.run("alembic", "current").stdout
    for head in project.heads():
        assert head in current, f"{label}: head {head} not applied:\n{current}"
    report = project.api("report", {"logins": project.logins})
    assert report["items"] == len(ITEM_NAMES), f"{label}: {report}"
    assert report["notes"] == ["kept through every update"], f"{label}: {report}"
    assert report["seen"] == _expected_views(answers), f"{label}: {report}"
    project.run("ruff", "check", ".")
    project.run("ruff", "format", "--check", ".")
    # The rendered migration tests after every update (they walk the chain, our revision
    # included); the whole rendered suite once, at the end of the scenario.
    migration_tests = sorted(p.name for p in (project.path / "tests").glob("test_migrations*.py"))
    passed = project.pytest(*(f"tests/{name}" for name in migration_tests))
    seconds = time.perf_counter() - started
    project.steps.append(
        f"{label}: heads {project.heads()}, {passed} migration tests passed ({seconds:.0f} s)"
    )


def run_scenario(repo: TemplateRepo, scenario: Scenario, work: Path, url: str) -> list[str]:
    """Run one scenario; the lines that report it (raises AssertionError on the first failure)."""
    started = time.perf_counter()
    answers: dict[str, Any] = {"project_name": "Shop", **scenario.answers}
    path = render_at(repo, work / "shop", OLD, answers)
    install(path)
    probe = work / "probe.py"
    probe.write_text(PROBE, encoding="utf-8")
    project = Project(path, url, probe)
    project.run("alembic", "upgrade", "heads")

    state = {
        **answers_of(path),
        "_seeded_without_auth": answers_of(path).get("auth") != "jwt",
        "_seeded_tenant": bool(answers_of(path).get("multi_tenant")),
    }
    project.api("seed", {"email": USER_EMAIL, "password": USER_PASSWORD, "items": ITEM_NAMES})
    if not state["_seeded_without_auth"]:
        project.logins.append((USER_EMAIL, USER_PASSWORD))

    # The user's own table: a model (one new file, as the rendered README says; app.models
    # finds it), an autogenerated revision, a row; committed.
    (path / "app/models/note.py").write_text(NOTE_MODEL, encoding="utf-8")
    project.run("alembic", "revision", "--autogenerate", "-m", "add notes")
    own = [p for p in (path / VERSIONS).glob("*_add_notes.py")]
    assert len(own) == 1 and "create_table" in own[0].read_text(), own
    project.run("alembic", "upgrade", "heads")
    project.run("alembic", "check")
    project.api("note", {"body": "kept through every update"})
    commit_all(path, "Our notes table")

    prepared = time.perf_counter() - started

    # (a) a newer template version, which adds a revision of its own.
    step = time.perf_counter()
    before = project.revision_files()
    result = update_project(path, vcs_ref=NEW, install=True)
    assert result.ok, (result.conflicts, result.install_error)
    assert "core_0002_items_updated_at.py" in set(project.revision_files()) - set(before)
    assert any("alembic upgrade heads" in step for step in result.next_steps())
    commit_all(path, f"Update to template {NEW}")
    assert len(project.heads()) == 2, "our revision and core_0002 should be two heads"
    check_after_update(project, before, state, f"{NEW}", step)

    # (b) each capability the project lacks, switched on.
    for switch in scenario.switches:
        label = ",".join(f"{k}={v}" for k, v in switch.items())
        step = time.perf_counter()
        before = project.revision_files()
        result = update_project(path, vcs_ref=NEW, data=switch, install=False)
        # Our model is a file of its own: no shared file to conflict in (issue 26).
        assert not result.conflicts, f"{label}: conflicts: {result.conflicts}"
        install(path)
        commit_all(path, f"Switch on {label}")
        state.update(switch)
        if switch.get("auth") == "jwt":
            project.logins.append((ADMIN_EMAIL, ADMIN_PASSWORD))
        check_after_update(project, before, state, label, step)

    project.run("mypy")  # --strict, over the app, the tests and every revision
    seconds = time.perf_counter() - started
    return [
        f"{scenario.name}: {len(project.steps)} updates, {seconds:.0f} s in all "
        f"(render, migrate, seed, own revision: {prepared:.0f} s)",
        *(f"  {done}" for done in project.steps),
    ]


def _run(repo: TemplateRepo, scenario: Scenario, work: Path, url: str) -> tuple[bool, list[str]]:
    """`run_scenario` in a worker process: (passed, report or the failure's text)."""
    try:
        return True, run_scenario(repo, scenario, work, url)
    except Exception as exc:  # reported by the test, with every other scenario's outcome
        return False, [f"{scenario.name} FAILED: {type(exc).__name__}: {exc}"]


def run_all(
    repo: TemplateRepo,
    scenarios: list[tuple[Scenario, str]],
    work: Path,
    record_property: Callable[[str, object], None],
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Every scenario, JOBS at a time (Copier changes the working directory: processes)."""
    started = time.perf_counter()
    with ProcessPoolExecutor(JOBS, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = [
            pool.submit(_run, repo, scenario, work / str(index), url)
            for index, (scenario, url) in enumerate(scenarios)
        ]
        outcomes = [future.result() for future in futures]
    seconds = time.perf_counter() - started
    record_property("update_scenarios", len(scenarios))
    with capsys.disabled():
        print(f"\n{len(scenarios)} update scenarios in {seconds:.0f} s ({JOBS} processes)")
        for _, lines in outcomes:
            print("\n".join(lines))
    failed = [lines[0] for passed, lines in outcomes if not passed]
    assert not failed, "\n\n".join(failed)


@pytest.mark.slow
def test_sqlite_projects_keep_their_schema_and_rows_through_updates(
    repo: TemplateRepo,
    tmp_path: Path,
    record_property: Callable[[str, object], None],
    capsys: pytest.CaptureFixture[str],
) -> None:
    scenarios = sqlite_scenarios()
    assert len(scenarios) == 3, "the pairwise set should cover none, jwt and jwt+multi_tenant"
    urls = [f"sqlite:///{tmp_path / f'app{index}.db'}" for index in range(len(scenarios))]
    run_all(repo, list(zip(scenarios, urls, strict=True)), tmp_path, record_property, capsys)


@pytest.mark.slow
def test_server_projects_keep_their_schema_and_rows_through_updates(
    repo: TemplateRepo,
    tmp_path: Path,
    server_pool: ServerPool,
    record_property: Callable[[str, object], None],
    capsys: pytest.CaptureFixture[str],
) -> None:
    scenarios = [s for s in SERVER_SCENARIOS if available(s.answers["database"])]
    if not scenarios:
        pytest.skip("neither PostgreSQL nor MariaDB is installed")
    created: list[tuple[Any, str]] = []
    try:
        urls = []
        for scenario in scenarios:
            server = server_pool.get(scenario.answers["database"])
            name = f"upd_{os.getpid()}_{len(created)}"
            urls.append(server.create_database(name))
            created.append((server, name))
        run_all(repo, list(zip(scenarios, urls, strict=True)), tmp_path, record_property, capsys)
    finally:
        for server, name in created:
            server.drop_database(name)
