"""`backforge add resource` with the resource template of this checkout (`resource/`): what the
README shows, on a fresh project, through the real command line (a child process, timed)."""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from backforge.commands import uv_binary
from backforge.render import render
from backforge.resources.add import ResourcePlan
from backforge.resources.project import alembic_heads
from backforge.steps.resources import EVERY_FIELD_TYPE

REPO = Path(__file__).resolve().parent.parent
BACKFORGE = Path(sys.executable).parent / "backforge"
RUFF = Path(sys.executable).parent / "ruff"
TEN_FIELDS = [*EVERY_FIELD_TYPE, "buyer:ref(user)?"]


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("BACKFORGE_HOME", str(tmp_path / "home"))
    yield tmp_path / "home"


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh default project (SQLite, jwt), committed by its copy task."""
    project = tmp_path_factory.mktemp("base") / "shop"
    render(str(REPO), project, {"project_name": "Shop"}, quiet=True)
    return project


def fresh(base: Path, into: Path) -> Path:
    shutil.copytree(base, into, symlinks=True)
    return into


def backforge(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BACKFORGE), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "COLUMNS": "200"},
    )


def add_customer_and_invoice(project: Path) -> None:
    added = backforge(
        "add", "resource", "customer", "--field", "name:str(120)", "--field", "email:str(254)?",
        "--search", "name", "--sort", "name", "--no-install", cwd=project,
    )  # fmt: skip
    assert added.returncode == 0, added.stdout + added.stderr
    added = backforge(
        "add", "resource", "invoice", "--field", "customer:ref(customer)",
        *[f"--field={spec}" for spec in TEN_FIELDS[:-1]], "--search", "title",
        "--sort", "amount", "--sort", "due", "--no-install", "-C", str(project),
    )  # fmt: skip
    assert added.returncode == 0, added.stdout + added.stderr


def test_the_readme_example_renders_and_lints(base: Path, tmp_path: Path, home: Path) -> None:
    project = fresh(base, tmp_path / "shop")
    heads = alembic_heads(project)
    add_customer_and_invoice(project)
    assert subprocess.run(["git", "status", "--porcelain"], cwd=project, capture_output=True,
                          text=True, check=True).stdout == ""  # fmt: skip
    for name in ("customer", "invoice"):
        answers = yaml.safe_load((project / f".copier-answers.resource-{name}.yml").read_text())
        for relative in ResourcePlan(project=project, answers=answers, fields=()).files:
            assert (project / relative).is_file(), relative
    customer = yaml.safe_load((project / ".copier-answers.resource-customer.yml").read_text())
    assert customer["down_revisions"] == heads
    assert customer["_src_path"] == str(home / "resource")
    # Owner-scoped: the invoice's table revises the customer's owner revision (the heads then).
    assert alembic_heads(project) == ["invoice_owner"]
    # Neither a str/int/required text field nor a required one: its schemas import no `Field`,
    # `Annotated`, `model_validator` or `SkipJsonSchema` (ruff's F401 below).
    added = backforge(
        "add", "resource", "reminder", "--field", "customer:ref(customer)?",
        "--field", "at:datetime?", "--no-install", cwd=project,
    )  # fmt: skip
    assert added.returncode == 0, added.stdout + added.stderr
    linted = subprocess.run(
        [str(RUFF), "check", "."], cwd=project, capture_output=True, text=True, check=False
    )
    assert linted.returncode == 0, linted.stdout + linted.stderr
    listed = backforge("resources", str(project))
    assert listed.returncode == 0, listed.stderr
    assert "customer: /api/v1/customers, scope owner" in listed.stdout
    assert "customer:ref(customer), title:str(120)" in listed.stdout


def test_a_project_older_than_the_resource_template_is_told_to_update_first(
    base: Path, tmp_path: Path, home: Path
) -> None:
    """A project rendered before `request_session` existed: the resource would import it, so the
    command refuses, names it, says to update, and leaves the project as it was."""
    project = fresh(base, tmp_path / "shop")
    db = project / "app/dependencies/db.py"
    db.write_text(db.read_text().replace("def request_session(", "def older_session("))
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qam", "older"]
    subprocess.run(git, cwd=project, check=True)
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=project, capture_output=True, text=True, check=True
    ).stdout

    added = backforge(
        "add", "resource", "invoice", "--field", "title:str", "--no-install", cwd=project
    )
    output = " ".join((added.stdout + added.stderr).split())
    assert added.returncode == 2, output
    assert "app.dependencies.db.request_session" in output
    assert "Run `backforge update` in the project first" in output
    assert (
        subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=project, capture_output=True, text=True, check=True
        ).stdout
        == head
    )
    assert subprocess.run(["git", "status", "--porcelain"], cwd=project, capture_output=True,
                          text=True, check=True).stdout == ""  # fmt: skip
    assert not (project / "app/models/invoice.py").exists()


def test_add_resource_with_ten_fields_takes_under_five_seconds(
    base: Path, tmp_path: Path, home: Path
) -> None:
    """Wall time of the command (a new process, --no-install), median of three fresh projects;
    the first run also fills the resource cache."""
    timings = []
    for run in range(3):
        project = fresh(base, tmp_path / f"shop{run}")
        started = time.perf_counter()
        added = backforge(
            "add", "resource", "invoice", *[f"--field={spec}" for spec in TEN_FIELDS],
            "--no-install", "-C", str(project),
        )  # fmt: skip
        timings.append(time.perf_counter() - started)
        assert added.returncode == 0, added.stdout + added.stderr
    print(f"backforge add resource, ten fields: {', '.join(f'{t:.2f}' for t in timings)} s")
    assert statistics.median(timings) < 5


def test_the_readme_plain_copier_recipe(base: Path, tmp_path: Path, home: Path) -> None:
    """README, Resources, "With plain Copier": copy from the resource cache, list it."""
    project = fresh(base, tmp_path / "shop")
    prepared = backforge("add", "resource", "note", "-f", "body:text", "--no-install", "-C",
                         str(project))  # fmt: skip
    assert prepared.returncode == 0, prepared.stderr
    cache = home / "resource"
    tag = subprocess.run(["git", "-C", str(cache), "describe", "--tags", "--abbrev=0"],
                         capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    heads = ",".join(alembic_heads(project))
    copied = subprocess.run(
        [sys.executable, "-m", "copier", "copy", "--trust", "--defaults", "-r", tag,
         "-a", ".copier-answers.resource-customer.yml", "-d", "resource=customer",
         "-d", "fields=[{name: name, type: str, optional: false, length: 120}]",
         "-d", "search=[name]", "-d", f"down_revisions=[{heads}]", str(cache), "."],
        cwd=project, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert copied.returncode == 0, copied.stdout + copied.stderr
    answers = yaml.safe_load((project / ".copier-answers.resource-customer.yml").read_text())
    assert answers["_commit"] == tag
    assert answers["plural"] == "customers" and answers["scope"] == "owner"
    assert (project / "app/routers/customers.py").is_file()
    listed = backforge("resources", str(project))
    assert "customer: /api/v1/customers" in listed.stdout


@pytest.mark.slow
def test_the_added_resources_migrate_and_pass_their_tests(
    base: Path, tmp_path: Path, home: Path
) -> None:
    project = fresh(base, tmp_path / "shop")
    add_customer_and_invoice(project)
    uv = uv_binary()
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    for command in (
        [uv, "sync", "--quiet"],
        [uv, "run", "alembic", "upgrade", "heads"],
        [uv, "run", "alembic", "check"],
        [uv, "run", "pytest", "-q", "--no-cov", "-p", "no:cacheprovider", "tests/test_customers.py",
         "tests/test_invoices.py"],
    ):  # fmt: skip
        done = subprocess.run(command, cwd=project, capture_output=True, text=True, env=env)
        assert done.returncode == 0, f"{command}: {done.stdout[-3000:]}{done.stderr[-3000:]}"
    # The heads read statically are Alembic's own (what the README's plain-Copier recipe uses).
    heads = subprocess.run(
        [uv, "run", "alembic", "heads"], cwd=project, capture_output=True, text=True, env=env
    )
    assert heads.returncode == 0, heads.stderr
    assert sorted(line.split()[0] for line in heads.stdout.splitlines()) == alembic_heads(project)
