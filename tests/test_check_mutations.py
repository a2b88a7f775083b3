"""Mutation tests of `backforge check`: a copy of the template broken in a branch that only some
variants render must fail exactly those variants, at the step that catches the breakage."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from backforge.check import CheckOptions, VariantResult, exit_status, run_check
from backforge.model import select
from backforge.servers import ServerPool, available
from backforge.steps.results import tier_steps

REPO = Path(__file__).resolve().parent.parent
SESSION = "template/app/db/session.py.jinja"
MIGRATION = "template/migrations/versions/core_0001_items.py"


def _git(repo: Path, *args: str) -> None:
    identity = ["-c", "user.name=backforge-tests", "-c", "user.email=tests@backforge.invalid"]
    subprocess.run(["git", *identity, *args], cwd=repo, check=True, capture_output=True, text=True)


def broken_template(tmp_path: Path, relative: str, mutate: Callable[[str], str]) -> Path:
    """A fresh git repository holding the template, with `relative` broken on branch `broken`."""
    repo = tmp_path / "template-repo"
    repo.mkdir()
    shutil.copy2(REPO / "copier.yml", repo / "copier.yml")
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for folder in ("template", "hooks", "resource"):  # the base renders items from resource/
        shutil.copytree(REPO / folder, repo / folder, ignore=ignore)
    _git(repo, "init", "--quiet", "--initial-branch=main")
    _git(repo, "add", "--all")
    _git(repo, "commit", "--quiet", "--no-verify", "-m", "template")
    _git(repo, "checkout", "--quiet", "-b", "broken")
    path = repo / relative
    original = path.read_text(encoding="utf-8")
    changed = mutate(original)
    assert changed != original, f"the mutation did not apply to {relative}"
    path.write_text(changed, encoding="utf-8")
    _git(repo, "commit", "--quiet", "--no-verify", "-am", "break one branch")
    return repo


def append_in_branch(condition: str, code: str) -> Callable[[str], str]:
    """Append `code` at the end of a module, rendered only when `condition` holds."""

    def mutate(text: str) -> str:
        return f"{text.rstrip()}\n{{% if {condition} %}}\n\n\n{code}{{% endif %}}\n"

    return mutate


def failing(results: list[VariantResult]) -> dict[str, str]:
    """Failing variant id -> the name of its failing step."""
    return {r.id: r.failed.name for r in results if r.failed is not None}


def expect_only(
    results: list[VariantResult], database: str, step: str, needles: tuple[str, ...]
) -> None:
    """Exactly the variants rendering `database`'s branch fail, at `step`, saying `needles`;
    every other variant passes."""
    assert exit_status(results) == 1
    broken = [r for r in results if r.answers["database"] == database]
    assert broken, f"no variant renders database={database}"
    assert failing(results) == {r.id: step for r in broken}
    for result in broken:
        failed = result.failed
        assert failed is not None
        for needle in needles:
            assert needle in failed.output, failed.output
        if database != "sqlite":  # sqlite is the default: the command need not name it
            assert f"database={database}" in result.reproduce
        assert "--vcs-ref broken" in result.reproduce
        later = result.steps[result.steps.index(failed) + 1 :]
        assert all(s.status == "skipped" for s in later)
    for result in results:
        if result.answers["database"] != database:
            assert result.ok, (result.id, result.failed)


# Every database, with no feature and with all of them (jwt and multi_tenant on): the broken
# branch depends on the database only, so these 6 variants prove "exactly those variants fail"
# without rendering the 1152 of `all` three times (the static tier over `all` runs once elsewhere).
def mutation_variants(repo: Path) -> list[dict[str, Any]]:
    everything = select(repo, "all")
    most = max(len(answers["features"]) for answers in everything)
    return [
        answers
        for answers in everything
        if len(answers["features"]) in (0, most)
        and answers["auth"] == "jwt"
        and answers.get("multi_tenant")
    ]


@pytest.mark.parametrize(
    ("database", "code", "step", "needles"),
    [
        pytest.param(
            "mysql",
            "def broken(:\n    pass\n",
            "ruff-check",
            ("app/db/session.py:", "invalid-syntax"),
            id="syntax-error",
        ),
        pytest.param(
            "postgresql",
            "import os\n",
            "ruff-check",
            ("app/db/session.py:", "F401", "`os` imported but unused"),
            id="lint-error",
        ),
        pytest.param(
            "sqlite",
            "import app.db.module_that_does_not_exist  # noqa: E402, F401\n",
            "openapi",
            ("app/db/session.py", "ModuleNotFoundError", "module_that_does_not_exist"),
            id="missing-import",
        ),
    ],
)
def test_static_tier_names_the_variants_that_render_a_broken_branch(
    tmp_path: Path, database: str, code: str, step: str, needles: tuple[str, ...]
) -> None:
    repo = broken_template(tmp_path, SESSION, append_in_branch(f"database == '{database}'", code))
    variants = mutation_variants(repo)
    assert len(variants) == 6
    results = run_check(
        str(repo), variants, CheckOptions(jobs=2, work_dir=tmp_path / "work", vcs_ref="broken")
    )
    assert len(results) == len(variants)
    expect_only(results, database, step, needles)


def _drift_in_mysql(text: str) -> str:
    """Shorten the first String column in the migration, only on MySQL (a dialect variant):
    `alembic check` sees the model's length differ from the database's."""
    match = re.search(r"sa\.String\(length=(\d+)\)", text)
    assert match, "the core migration has no sa.String(length=N) column to drift"
    length = int(match.group(1))
    drifted = (
        f"DRIFTED = sa.String(length={length})"
        f'.with_variant(sa.String(length={length - 1}), "mysql", "mariadb")\n'
    )
    text = text[: match.start()] + "DRIFTED" + text[match.end() :]
    anchor = text.index("\nrevision: str")
    return text[:anchor] + drifted + text[anchor:]


@pytest.mark.slow
@pytest.mark.skipif(not available("mysql"), reason="apt-get install -y mariadb-server")
def test_full_tier_catches_a_migration_that_drifts_in_one_branch(
    tmp_path: Path, server_pool: ServerPool
) -> None:
    repo = broken_template(tmp_path, MIGRATION, _drift_in_mysql)
    # The SQLite variant is the control (it must pass); without auth its suite is the shortest.
    variants = select(repo, "database=mysql,docker=false,ci=none;database=sqlite,auth=none")
    results = run_check(
        str(repo),
        variants,
        CheckOptions(
            tier="full", jobs=2, work_dir=tmp_path / "work", vcs_ref="broken", pool=server_pool
        ),
    )
    expect_only(results, "mysql", "migrations", ("alembic check", "modify_type"))


def _template_copy(root: Path, *, resource: bool = True) -> Path:
    """The template copied to `root`; without `resource`, resource/ is no Copier template (its
    copier.yml is gone), though its files stay: the base's items are rendered from them."""
    root.mkdir()
    shutil.copy2(REPO / "copier.yml", root / "copier.yml")
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for folder in ("template", "hooks", "resource"):
        shutil.copytree(REPO / folder, root / folder, ignore=ignore)
    if not resource:
        (root / "resource" / "copier.yml").unlink()
    return root


RESOURCE_VARIANT = "database=sqlite,auth=none,features=[],ci=none,docker=false"


def test_with_resources_a_resource_that_fails_is_the_failed_add_resources_step(
    tmp_path: Path, server_pool: ServerPool
) -> None:
    template = _template_copy(tmp_path / "template")
    # A file of the resource template that cannot render without auth (an unknown name).
    broken = template / "resource" / "template" / "app" / "broken.py.jinja"
    broken.write_text("{% if auth == 'none' %}{{ no_such_answer }}{% endif %}\n", encoding="utf-8")
    results = run_check(
        str(template),
        select(template, RESOURCE_VARIANT),
        CheckOptions(tier="full", work_dir=tmp_path / "work", pool=server_pool, resources=True),
    )
    (result,) = results
    assert exit_status(results) == 1
    failed = result.failed
    assert failed is not None
    assert failed.name == "add-resources"
    assert "resource 'customer' failed" in failed.output
    assert "no_such_answer" in failed.output
    assert "$ backforge add resource customer --field 'title:str(120)'" in failed.output
    later = len(tier_steps("full", resources=True)) - 2  # every step after add-resources
    assert [step.status for step in result.steps] == ["passed", "failed"] + ["skipped"] * later


def test_with_resources_a_template_without_a_resource_template_fails_the_step(
    tmp_path: Path, server_pool: ServerPool
) -> None:
    template = _template_copy(tmp_path / "template", resource=False)
    results = run_check(
        str(template),
        select(template, RESOURCE_VARIANT),
        CheckOptions(tier="full", work_dir=tmp_path / "work", pool=server_pool, resources=True),
    )
    (result,) = results
    failed = result.failed
    assert failed is not None
    assert failed.name == "add-resources"
    assert "has no resource template (resource/copier.yml)" in failed.output
