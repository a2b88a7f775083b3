"""The upgrade users make: from the last recorded release to this working tree.

This repository is cloned into a throwaway folder (no tags: `backforge/releases.toml` says which
commit is the last release), checked out at that commit and tagged with its version there; the
working tree's template is committed on top and tagged as well. For each database, a project is
rendered from the release (one with a rich feature set), installed, migrated and filled with
data through its own API (in process), edited by its user (README and app/main.py: files the
update also changes, so it must merge them), committed, then updated to the working tree with
`backforge update`'s engine while switching on a capability it did not have. Then: no conflict;
the user's edits kept; every revision file that existed before byte-identical; `alembic upgrade
heads` on the old database; `alembic check` clean; every row of every table kept (counts before
and after) and the items readable through the API; the rendered suite green (the whole suite
for the richest project, the tests of the migrations and of the switched capability for the
others: the full tier runs whole suites over `pairwise`). The richest project's suite runs
without its coverage gate: coverage doubles a suite's time on Python 3.11, the upgraded code is
the working tree's, and the full tier applies the gate to the pairwise variant with the most
features.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from test_update import answers_of, commit_all, git

from backforge import __version__
from backforge.commands import install
from backforge.databases import database_of
from backforge.model.variant import variant_of
from backforge.render import render
from backforge.servers import ServerPool, ServiceKind, available
from backforge.source import TEMPLATE_PARTS, content_digest, content_tag
from backforge.steps.full import project_pytest
from backforge.steps.tools import passed_count
from backforge.update import update_project
from backforge.versioning import read_releases

MAIN = Path(__file__).resolve().parents[1]
LAST = read_releases(MAIN)[-1]
VERSIONS = "migrations/versions"
JOBS = 2
ITEM_NAMES = ("anvil", "bellows", "crucible")
USER_EMAIL, USER_PASSWORD = "alice@example.com", "a long passphrase for the tests 42"
ADMIN_EMAIL, ADMIN_PASSWORD = "owner@example.com", "the first superuser's passphrase"
README_EDIT = "\n## Our deployment\n\nThe platform team deploys this service on Fridays.\n"
MAIN_EDIT = "\n# Shop: a line of our own, kept by every update.\n"

# Runs inside the rendered project's environment: counts rows; stores and reads items through
# the API (as `email`, and in each of the caller's organizations when `tenant`).
PROBE = """
import asyncio, json, sys
from httpx import ASGITransport, AsyncClient
from sqlalchemy import func, inspect, select, table
from sqlalchemy.ext.asyncio import create_async_engine
from app.core.config import Settings
from app.db.url import to_async_url
from app.main import create_app

command, url, arguments = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
cheap = {"argon2_time_cost": 1, "argon2_memory_cost_kib": 1024, "argon2_parallelism": 1}


async def counts():
    engine = create_async_engine(to_async_url(url))
    try:
        async with engine.connect() as connection:
            names = await connection.run_sync(lambda sync: inspect(sync).get_table_names())
            found = {}
            for name in names:
                if name != "alembic_version":
                    query = select(func.count()).select_from(table(name))
                    found[name] = (await connection.execute(query)).scalar_one()
            return found
    finally:
        await engine.dispose()


async def call(http, method, path, expected, **options):
    response = await http.request(method, path, **options)
    assert response.status_code == expected, (method, path, response.status_code, response.text)
    return response.json()


async def main():
    if command == "counts":
        return await counts()
    extra = {k: v for k, v in cheap.items() if k in Settings.model_fields}
    app = create_app(Settings(_env_file=None, environment="test", database_url=url, **extra))
    async with app.router.lifespan_context(app):
        transport = ASGITransport(app=app)
        async with AsyncClient(transport=transport, base_url="http://testserver") as http:
            headers = {}
            email, password = arguments.get("email"), arguments.get("password")
            if email and command == "seed":
                credentials = {"email": email, "password": password}
                await call(http, "POST", "/api/v1/auth/register", 201, json=credentials)
            if email:
                form = {"username": email, "password": password}
                token = await call(http, "POST", "/api/v1/auth/token", 200, data=form)
                headers = {"Authorization": "Bearer " + token["access_token"]}
            if command == "seed":
                if arguments["tenant"]:
                    body = {"name": "Acme"}
                    made = await call(
                        http, "POST", "/api/v1/organizations", 201, json=body, headers=headers
                    )
                    headers["X-Organization-ID"] = made["id"]
                for name in arguments["items"]:
                    body = {"name": name}
                    await call(http, "POST", "/api/v1/items", 201, json=body, headers=headers)
                return {}
            scopes = [headers]
            if arguments["tenant"]:
                found = await call(http, "GET", "/api/v1/organizations", 200, headers=headers)
                scopes = [{**headers, "X-Organization-ID": o["id"]} for o in found]
            names = []
            for scoped in scopes:
                page = await call(
                    http, "GET", "/api/v1/items", 200, params={"limit": 100}, headers=scoped
                )
                names += [item["name"] for item in page["items"]]
            return {"items": sorted(names)}


print(json.dumps(asyncio.run(main())))
"""


@dataclass(frozen=True)
class Upgrade:
    answers: dict[str, Any]
    switch: dict[str, Any]
    """The capability switched on by the update."""
    suite: tuple[str, ...]
    """The rendered tests run after the update (globs under tests/); empty: the whole suite."""

    @property
    def name(self) -> str:
        return f"{self.answers['database']}: {self.answers} + {self.switch}"


UPGRADES = [
    Upgrade(
        {
            "database": "postgresql",
            "auth": "jwt",
            "multi_tenant": True,
            "features": ["cache", "rate_limit"],
        },
        {"features": ["cache", "rate_limit", "jobs", "email"]},
        (),
    ),
    # Items created anonymously get the first superuser as owner.
    Upgrade(
        {"database": "sqlite", "auth": "none"},
        {"auth": "jwt"},
        ("test_migrations*.py", "test_items.py", "test_auth.py"),
    ),
    # Existing users get a personal organization, holding their items.
    Upgrade(
        {"database": "mysql", "auth": "jwt"},
        {"multi_tenant": True},
        ("test_migrations*.py", "test_items.py", "test_organizations.py"),
    ),
]


def _needs_redis(upgrade: Upgrade) -> bool:
    """Whether the project needs Redis before or after the update (copier.yml computes it)."""
    return any(
        variant_of(MAIN, answers).needs_redis
        for answers in (upgrade.answers, {**upgrade.answers, **upgrade.switch})
    )


@dataclass(frozen=True)
class ReleaseRepo:
    path: Path
    release: str
    """The last release's tag (its version)."""
    current: str
    """The working tree's tag: this version and this template's content."""


@pytest.fixture(scope="module")
def release_repo(tmp_path_factory: pytest.TempPathFactory) -> ReleaseRepo:
    """A clone of this repository: the last release tagged, the working tree tagged on top."""
    found = subprocess.run(
        ["git", "cat-file", "-e", f"{LAST.commit}^{{commit}}"], cwd=MAIN, check=False
    )
    if found.returncode != 0:
        pytest.fail(
            f"release {LAST.version} ({LAST.commit}) is not in this clone's history; a shallow "
            "clone lacks it: `git fetch --unshallow` (CI: actions/checkout with fetch-depth: 0)"
        )
    root = tmp_path_factory.mktemp("release") / "backforge"
    git(MAIN, "clone", "--quiet", "--no-checkout", "--no-tags", str(MAIN), str(root))
    git(root, "checkout", "--quiet", "-b", "upgrade", LAST.commit)
    git(root, "tag", LAST.version)
    for part in TEMPLATE_PARTS:
        target = root / part
        if target.is_dir():
            shutil.rmtree(target)
        else:
            target.unlink(missing_ok=True)
        source = MAIN / part
        if source.is_dir():
            ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".mypy_cache", ".ruff_cache")
            shutil.copytree(source, target, ignore=ignore)
        else:
            shutil.copy2(source, target)
    current = content_tag(__version__, content_digest(root, TEMPLATE_PARTS))
    commit_all(root, f"The working tree, {current}")
    git(root, "tag", current)
    return ReleaseRepo(root, LAST.version, current)


@dataclass
class Project:
    path: Path
    url: str
    env: dict[str, str]

    def run(self, *command: str, **extra: str) -> str:
        """A command of the project's environment (`.venv/bin/<command>`); its output."""
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("FIRST_SUPERUSER_", "VIRTUAL_ENV", "DATABASE_URL", "REDIS_URL"))
        }
        env.update(DATABASE_URL=self.url, ENVIRONMENT="test", PYTHONPATH=str(self.path))
        env.update(self.env)
        env.update(extra)
        result = subprocess.run(
            [str(self.path / ".venv/bin" / command[0]), *command[1:]],
            cwd=self.path,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, (
            f"{' '.join(command)} exited {result.returncode} in {self.path}:\n"
            f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        )
        return result.stdout

    def probe(
        self, command: str, env: Mapping[str, str] | None = None, **arguments: Any
    ) -> dict[str, Any]:
        script = self.path.parent / "probe.py"
        script.write_text(PROBE, encoding="utf-8")
        out = self.run(
            "python", str(script), command, self.url, json.dumps(arguments), **(env or {})
        )
        loaded = json.loads(out.strip().splitlines()[-1])
        assert isinstance(loaded, dict)
        return loaded

    def revision_files(self) -> dict[str, bytes]:
        return {p.name: p.read_bytes() for p in sorted((self.path / VERSIONS).glob("*.py"))}


def _login(answers: Mapping[str, Any], seeded_with_auth: bool) -> dict[str, Any]:
    """Who reads the items through the API, given the project's answers now."""
    login: dict[str, Any] = {"tenant": bool(answers.get("multi_tenant"))}
    if answers.get("auth") == "jwt":
        email, password = (
            (USER_EMAIL, USER_PASSWORD) if seeded_with_auth else (ADMIN_EMAIL, ADMIN_PASSWORD)
        )
        login.update(email=email, password=password)
    return login


def run_upgrade(
    repo: ReleaseRepo,
    upgrade: Upgrade,
    work: Path,
    url: str,
    suite_url: str,
    env: dict[str, str],
) -> list[str]:
    """One upgrade from the release; the lines that report it (AssertionError on a failure)."""
    started = time.perf_counter()
    path = work / "shop"
    render(str(repo.path), path, {"project_name": "Shop", **upgrade.answers}, vcs_ref=repo.release)
    assert answers_of(path)["_commit"] == repo.release
    install(path)
    project = Project(path, url, env)
    project.run("alembic", "upgrade", "heads")
    seeded_with_auth = upgrade.answers.get("auth") == "jwt"
    login = _login(upgrade.answers, seeded_with_auth)
    project.probe("seed", items=ITEM_NAMES, **login)
    rows = project.probe("counts")
    assert rows.get("items") == len(ITEM_NAMES), rows

    # The user's edits, in files the update changes too.
    readme, main = path / "README.md", path / "app" / "main.py"
    readme.write_text(readme.read_text(encoding="utf-8") + README_EDIT, encoding="utf-8")
    main.write_text(main.read_text(encoding="utf-8") + MAIN_EDIT, encoding="utf-8")
    commit_all(path, "Our edits")
    before = project.revision_files()
    prepared = time.perf_counter() - started

    result = update_project(path, vcs_ref=repo.current, data=upgrade.switch, install=True)
    assert not result.conflicts, [c.location for c in result.conflicts]
    assert result.ok, result.install_error
    assert (result.from_version, result.to_version) == (repo.release, repo.current)
    merged = git(path, "diff", "--name-only", "HEAD").split()
    assert {"README.md", "app/main.py"} <= set(merged), f"the update left them alone: {merged}"
    assert readme.read_text(encoding="utf-8").endswith(README_EDIT)
    assert main.read_text(encoding="utf-8").endswith(MAIN_EDIT)
    after = project.revision_files()
    changed = sorted(name for name, content in before.items() if after.get(name) != content)
    assert not changed, f"applied revisions rewritten or removed by the update: {changed}"
    added = sorted(set(after) - set(before))
    assert added, "switching the capability on brought no revision"
    commit_all(path, f"Update to {repo.current}")

    first_superuser = {
        "FIRST_SUPERUSER_EMAIL": ADMIN_EMAIL,
        "FIRST_SUPERUSER_PASSWORD": ADMIN_PASSWORD,
    }
    project.run("alembic", "upgrade", "heads", **first_superuser)
    project.run("alembic", "check")
    kept = project.probe("counts")
    lost = {
        table: (count, kept.get(table)) for table, count in rows.items() if kept.get(table) != count
    }
    assert not lost, f"rows not kept (before, after): {lost}"
    now = {**upgrade.answers, **upgrade.switch}
    # Users who signed up before email was on still sign in (email_0001 marks them verified).
    verified = {"EMAIL_VERIFICATION_REQUIRED": "true"}
    seen = project.probe("items", verified, **_login(now, seeded_with_auth))
    assert seen == {"items": sorted(ITEM_NAMES)}, seen
    migrated = time.perf_counter() - started - prepared

    tests = project.path / "tests"
    paths = sorted(str(p.relative_to(path)) for glob in upgrade.suite for p in tests.glob(glob))
    assert paths or not upgrade.suite, f"no rendered tests match {upgrade.suite}"
    suite_env = {"ENVIRONMENT": "test", **env}
    if paths:
        output = project.run(
            "pytest", "-q", "-p", "no:cacheprovider", "--no-cov", *paths, DATABASE_URL=suite_url
        )
    else:
        output = project_pytest(path, suite_url, suite_env, coverage=False)
    passed = passed_count(output)
    seconds = time.perf_counter() - started
    scope = f"{len(paths)} test files" if paths else "the whole suite"
    return [
        f"{upgrade.name}: {seconds:.0f} s (render, install, migrate, seed: {prepared:.0f} s; "
        f"update, migrate: {migrated:.0f} s)",
        f"  revisions added: {added}; rows kept: {sum(rows.values())} in {len(rows)} tables "
        f"{rows}; rendered tests passed: {passed} ({scope})",
    ]


def _run(
    repo: ReleaseRepo, upgrade: Upgrade, work: Path, url: str, suite_url: str, env: dict[str, str]
) -> tuple[bool, list[str]]:
    """`run_upgrade` in a worker process: (passed, its report or the failure's text)."""
    try:
        return True, run_upgrade(repo, upgrade, work, url, suite_url, env)
    except Exception as exc:  # reported by the test, with every other upgrade's outcome
        return False, [f"{upgrade.name} FAILED: {type(exc).__name__}: {exc}"]


@pytest.mark.slow
def test_projects_of_the_last_release_upgrade_to_the_working_tree(
    release_repo: ReleaseRepo,
    tmp_path: Path,
    server_pool: ServerPool,
    record_property: Callable[[str, object], None],
    capsys: pytest.CaptureFixture[str],
) -> None:
    kinds: set[ServiceKind] = {
        k for u in UPGRADES if (k := database_of(variant_of(MAIN, u.answers)).server)
    }
    kinds |= {"redis"} if any(_needs_redis(u) for u in UPGRADES) else set()
    missing = sorted(kind for kind in kinds if not available(kind))
    assert not missing, f"no {missing} server on this machine: install it (see .ci/run)"
    created: list[tuple[Any, str]] = []

    def database(kind: ServiceKind) -> str:
        server = server_pool.get(kind)
        name = f"rel_{os.getpid()}_{len(created)}"
        created.append((server, name))
        return str(server.create_database(name))

    started = time.perf_counter()
    try:
        jobs = []
        for index, upgrade in enumerate(UPGRADES):
            work = tmp_path / str(index)
            work.mkdir()
            kind = database_of(variant_of(MAIN, upgrade.answers)).server
            url = database(kind) if kind else f"sqlite:///{work / 'app.db'}"
            suite_url = database(kind) if kind else f"sqlite:///{work / 'suite.db'}"
            env = {"REDIS_URL": database("redis")} if _needs_redis(upgrade) else {}
            jobs.append((upgrade, work, url, suite_url, env))
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(JOBS, mp_context=context) as pool:
            futures = [pool.submit(_run, release_repo, *job) for job in jobs]
            outcomes = [future.result() for future in futures]
    finally:
        for server, name in created:
            server.drop_database(name)
    seconds = time.perf_counter() - started
    record_property("release_upgrades", len(UPGRADES))
    with capsys.disabled():
        print(f"\nupgrades from release {release_repo.release} to {release_repo.current}: ", end="")
        print(f"{seconds:.0f} s ({JOBS} processes)")
        for _, lines in outcomes:
            print("\n".join(lines))
    failed = [lines[0] for passed, lines in outcomes if not passed]
    assert not failed, "\n\n".join(failed)
