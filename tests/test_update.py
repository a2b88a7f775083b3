"""`backforge update` (backforge/update.py) with real Copier and real git.

Every test works on a temporary git copy of this repository's template (copier.yml, template/,
hooks/) with local tags, never on tags of this repository:

- `0.1.0`: the template as it is in the working tree;
- `0.2.0`: a line changed in app/routers/health.py, a section appended to README.md, a line
  appended to app/middleware/liveness.py, a new file docs/UPDATING.md, and a new question
  `update_probe` (alpha/beta/none) that renders PROBE.md unless none.

Projects are rendered at 0.1.0, changed the way users change them, committed, and updated.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import copier
import pytest
import yaml
from typer.testing import CliRunner

from backforge.cli import app as cli_app
from backforge.errors import UsageError
from backforge.model import load_questions
from backforge.render import render
from backforge.update import (
    ANSWERS_FILE,
    UpdateResult,
    refused_answer_changes,
    update_project,
)

MAIN = Path(__file__).resolve().parents[1]
REFUSE_HOOK = MAIN / "hooks" / "refuse_answer_changes.py"
OLD, NEW = "0.1.0", "0.2.0"

NEW_DOCSTRING = '"""Health checks: liveness (/health, no I/O) and readiness (/ready)."""'
README_SECTION = "\n## Updating\n\nThis project follows its template: run `backforge update`.\n"
TIMING_LINE = "# Liveness middleware: changed in template 0.2.0.\n"
UPDATING_DOC = "# Updating\n\nReview `git diff` after `backforge update`, then commit.\n"
PROBE_QUESTION = """
# Added by the tests of backforge update (template 0.2.0)
update_probe:
  type: str
  help: A question that template 0.2.0 adds
  choices:
    - alpha
    - beta
    - none
  default: alpha
"""
PROBE_FILE = "{% if update_probe != 'none' %}PROBE.md{% endif %}.jinja"
Tree = dict[str, tuple[bytes, bool]]


# ---------------------------------------------------------------------------------------------
# Helpers (also used by test_update_variants.py)
# ---------------------------------------------------------------------------------------------


def git(cwd: Path, *args: str) -> str:
    result = subprocess.run(
        ["git", "-c", "user.name=Test", "-c", "user.email=test@example.com", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, f"git {' '.join(args)}: {result.stdout}{result.stderr}"
    return result.stdout


def commit_all(cwd: Path, message: str) -> None:
    git(cwd, "add", "--all")
    git(cwd, "commit", "--quiet", "--no-verify", "--allow-empty", "-m", message)


def template_file(root: Path, relative: str) -> Path:
    """`template/<relative>` or `template/<relative>.jinja`, whichever the template has."""
    for candidate in (root / "template" / relative, root / "template" / f"{relative}.jinja"):
        if candidate.is_file():
            return candidate
    raise AssertionError(f"the template has no {relative}")


def replace_first_line(path: Path, line: str) -> None:
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    lines[0] = line + "\n"
    path.write_text("".join(lines), encoding="utf-8")


def append(path: Path, text: str) -> None:
    path.write_text(path.read_text(encoding="utf-8") + text, encoding="utf-8")


@dataclass(frozen=True)
class TemplateRepo:
    path: Path
    old_questions: frozenset[str]
    """Questions of copier.yml at 0.1.0."""

    @property
    def src(self) -> str:
        return str(self.path)


def tagged_template_copy(root: Path) -> None:
    """A git repository at `root` holding this template's working tree, tagged 0.1.0."""
    root.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".mypy_cache", ".ruff_cache")
    shutil.copy2(MAIN / "copier.yml", root / "copier.yml")
    for folder in ("template", "hooks", "resource"):  # the base renders items from resource/
        shutil.copytree(MAIN / folder, root / folder, ignore=ignore)
    git(root, "init", "--quiet", "--initial-branch=main")
    commit_all(root, "Template 0.1.0")
    git(root, "tag", OLD)


def build_template_repo(root: Path) -> TemplateRepo:
    """A git repository of this template: the working tree tagged 0.1.0, then 0.2.0."""
    tagged_template_copy(root)
    old_questions = frozenset(q.name for q in load_questions(root))

    replace_first_line(template_file(root, "app/routers/health.py"), NEW_DOCSTRING)
    append(template_file(root, "README.md"), README_SECTION)
    append(template_file(root, "app/middleware/liveness.py"), TIMING_LINE)
    (root / "template" / "docs").mkdir(exist_ok=True)
    (root / "template" / "docs" / "UPDATING.md").write_text(UPDATING_DOC, encoding="utf-8")
    config = (root / "copier.yml").read_text(encoding="utf-8")
    (root / "copier.yml").write_text(config.rstrip("\n") + "\n" + PROBE_QUESTION, encoding="utf-8")
    (root / "template" / PROBE_FILE).write_text("Probe: {{ update_probe }}\n", encoding="utf-8")
    commit_all(root, "Template 0.2.0")
    git(root, "tag", NEW)
    return TemplateRepo(root, old_questions)


def render_at(repo: TemplateRepo, dest: Path, ref: str, answers: Mapping[str, Any]) -> Path:
    """Render (the copy task runs `git init` and commits) and check that it committed."""
    render(repo.src, dest, {"project_name": "Shop", **answers}, vcs_ref=ref, quiet=True)
    assert git(dest, "status", "--porcelain") == "", "the copy task left the tree dirty"
    return dest


def tree(project: Path) -> Tree:
    """Every file but .git, .venv, .env and uv.lock; the answers file without `_commit`."""
    files: Tree = {}
    for path in sorted(project.rglob("*")):
        relative = path.relative_to(project).as_posix()
        top = relative.split("/", 1)[0]
        if top in {".git", ".venv"} or relative in {".env", "uv.lock"} or not path.is_file():
            continue
        content = path.read_bytes()
        if relative == ANSWERS_FILE:
            content = re.sub(rb"(?m)^_commit:.*\n", b"", content)
        files[relative] = (content, os.access(path, os.X_OK))
    return files


def assert_same_tree(updated: Path, fresh: Path) -> None:
    got, want = tree(updated), tree(fresh)
    assert sorted(got) == sorted(want), (
        f"only in the updated project: {sorted(set(got) - set(want))}; "
        f"only in the fresh render: {sorted(set(want) - set(got))}"
    )
    differing = [name for name in want if got[name] != want[name]]
    assert not differing, f"files that differ from a fresh render: {differing}"


def empty_dirs(project: Path) -> list[str]:
    return sorted(
        path.relative_to(project).as_posix()
        for path in project.rglob("*")
        if path.is_dir() and ".git" not in path.parts and not any(path.iterdir())
    )


def answers_of(project: Path) -> dict[str, Any]:
    loaded = yaml.safe_load((project / ANSWERS_FILE).read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


def snapshot(project: Path) -> tuple[dict[str, bytes], str, str]:
    """Bytes of every file (the .git folder excepted), `git status`, and HEAD."""
    files = {
        path.relative_to(project).as_posix(): path.read_bytes()
        for path in sorted(project.rglob("*"))
        if path.is_file() and ".git" not in path.relative_to(project).parts
    }
    status = git(project, "status", "--porcelain", "--ignored", "--untracked-files=all")
    return files, status, git(project, "rev-parse", "HEAD")


def update(project: Path, **options: Any) -> UpdateResult:
    options.setdefault("vcs_ref", NEW)
    options.setdefault("install", False)
    return update_project(project, **options)


# ---------------------------------------------------------------------------------------------
# Fixtures
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> TemplateRepo:
    return build_template_repo(tmp_path_factory.mktemp("template") / "backforge")


@pytest.fixture(scope="module")
def fresh_new(repo: TemplateRepo, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh render at 0.2.0 with the default answers (and project_name Shop)."""
    return render_at(repo, tmp_path_factory.mktemp("fresh") / "shop", NEW, {})


@pytest.fixture
def project(repo: TemplateRepo, tmp_path: Path) -> Path:
    """A project rendered at 0.1.0 with the default answers, committed."""
    return render_at(repo, tmp_path / "shop", OLD, {})


# ---------------------------------------------------------------------------------------------
# 1. A pristine project becomes exactly a fresh render
# ---------------------------------------------------------------------------------------------


def test_pristine_project_updates_to_exactly_a_fresh_render(project: Path, fresh_new: Path) -> None:
    head = git(project, "rev-parse", "HEAD")
    result = update(project)
    assert result.ok and result.exit_code == 0, result
    assert (result.from_version, result.to_version) == (OLD, NEW)
    assert result.conflicts == ()
    for changed in ("README.md", "app/routers/health.py", "docs/UPDATING.md", "PROBE.md"):
        assert changed in result.changed
    assert_same_tree(project, fresh_new)
    assert empty_dirs(project) == empty_dirs(fresh_new)
    assert answers_of(project)["_commit"] == NEW
    assert answers_of(project)["update_probe"] == "alpha"  # a new question takes its default
    assert git(project, "rev-parse", "HEAD") == head, "update must commit nothing"
    assert git(project, "status", "--porcelain"), "the update's changes are left for review"
    steps = result.next_steps()
    assert steps[0] == f"cd {project.resolve()}"
    assert any("git diff" in step for step in steps)
    assert steps[-1] == f'git add -A && git commit -m "Update to template {NEW}"'


def test_update_to_the_current_version_changes_nothing(repo: TemplateRepo, tmp_path: Path) -> None:
    project = render_at(repo, tmp_path / "shop", NEW, {})
    before = snapshot(project)
    result = update(project)
    assert result.ok
    assert result.changed == ()
    assert snapshot(project) == before


def test_update_without_vcs_ref_goes_to_the_latest_tag(project: Path) -> None:
    result = update(project, vcs_ref=None)
    assert result.to_version == NEW
    assert (project / "docs" / "UPDATING.md").is_file()


# ---------------------------------------------------------------------------------------------
# 2. User edits, added files and deleted files survive
# ---------------------------------------------------------------------------------------------

USER_ROUTE = '\n\n@router.get("/version")\nasync def version() -> dict[str, str]:\n    return {}\n'


def test_user_edits_added_and_deleted_files_survive(project: Path) -> None:
    readme, health = project / "README.md", project / "app/routers/health.py"
    replace_first_line(readme, "# Shop: the billing backend of ACME")
    append(health, USER_ROUTE)
    added = {
        "app/routers/billing.py": "from fastapi import APIRouter\n\nrouter = APIRouter()\n",
        "docs/NOTES.md": "# Our notes\n",
        "scripts/seed.sh": "#!/bin/sh\necho seed\n",
    }
    for relative, text in added.items():
        (project / relative).parent.mkdir(parents=True, exist_ok=True)
        (project / relative).write_text(text, encoding="utf-8")
    (project / "scripts/seed.sh").chmod(0o755)
    (project / ".pre-commit-config.yaml").unlink()  # the template leaves it alone
    (project / "app/middleware/liveness.py").unlink()  # the template changes it in 0.2.0
    commit_all(project, "Our changes")
    (project / "dev.db").write_bytes(b"ignored by git")  # ignored files do not make it dirty

    result = update(project)

    assert result.ok, result.conflicts
    readme_text, health_text = readme.read_text(), health.read_text()
    assert readme_text.startswith("# Shop: the billing backend of ACME\n")
    assert readme_text.endswith(README_SECTION)
    assert health_text.startswith(NEW_DOCSTRING + "\n")
    assert health_text.endswith(USER_ROUTE)
    for relative, text in added.items():
        assert (project / relative).read_text() == text, relative
    assert os.access(project / "scripts/seed.sh", os.X_OK)
    assert (project / "docs/UPDATING.md").read_text() == UPDATING_DOC
    assert not (project / ".pre-commit-config.yaml").exists(), "a deleted file came back"
    assert not (project / "app/middleware/liveness.py").exists(), "a deleted file came back"
    assert (project / "dev.db").read_bytes() == b"ignored by git"
    assert not list(project.rglob("*.rej"))


# ---------------------------------------------------------------------------------------------
# 3. Conflicts are reported and the user's version is kept
# ---------------------------------------------------------------------------------------------

USER_DOCSTRING = '"""Our own health endpoints (edited by the team)."""'
USER_README_END = "\n## Deploying\n\nAsk the platform team.\n"


def _edit_conflicting_lines(project: Path) -> None:
    replace_first_line(project / "app/routers/health.py", USER_DOCSTRING)
    append(project / "README.md", USER_README_END)
    commit_all(project, "Our docstring and README section")


def test_inline_conflicts_are_listed_with_the_users_version_in_the_file(project: Path) -> None:
    _edit_conflicting_lines(project)
    result = update(project, conflict="inline", install=True)  # install is skipped: conflicts
    assert result.exit_code == 1 and not result.installed
    by_path = {c.path: c for c in result.conflicts}
    assert sorted(by_path) == ["README.md", "app/routers/health.py"]
    health = by_path["app/routers/health.py"]
    assert health.kind == "inline" and "unmerged" in health.kinds
    assert health.line == 1
    assert "app/routers/health.py:1" in health.advice and "git add" in health.advice
    text = (project / "app/routers/health.py").read_text()
    assert USER_DOCSTRING in text and NEW_DOCSTRING in text
    assert "<<<<<<< before updating" in text and ">>>>>>> after updating" in text
    assert "Ask the platform team." in (project / "README.md").read_text()
    unmerged = git(project, "diff", "--name-only", "--diff-filter=U").split()
    assert sorted(unmerged) == ["README.md", "app/routers/health.py"]
    assert (project / "docs/UPDATING.md").is_file(), "the non-conflicting changes still arrive"
    assert not (project / "uv.lock").exists()
    assert any("uv lock" in step for step in result.next_steps())


@pytest.mark.parametrize("ignore_rejects", [False, True], ids=["rej", "rej-git-ignored"])
def test_rej_conflicts_are_listed_with_the_users_version_beside_the_file(
    project: Path, ignore_rejects: bool
) -> None:
    if ignore_rejects:
        append(project / ".gitignore", "*.rej\n")
    _edit_conflicting_lines(project)
    result = update(project, conflict="rej")
    assert result.exit_code == 1
    by_path = {c.path: c for c in result.conflicts}
    assert sorted(by_path) == ["README.md", "app/routers/health.py"]
    health = by_path["app/routers/health.py"]
    assert health.kinds == ("rej",)
    assert health.reject_file == "app/routers/health.py.rej"
    assert "app/routers/health.py.rej" in health.advice
    reject = (project / "app/routers/health.py.rej").read_text()
    assert USER_DOCSTRING in reject, "the user's lines must be kept beside the file"
    assert (project / "app/routers/health.py").read_text().startswith(NEW_DOCSTRING)
    assert "Ask the platform team." in (project / "README.md.rej").read_text()


def test_an_edited_file_that_the_template_drops_is_reported(project: Path) -> None:
    append(project / "Dockerfile", "# our healthcheck tweak\n")
    commit_all(project, "Tweak the Dockerfile")
    result = update(project, data={"docker": False})
    assert result.exit_code == 1
    assert [(c.path, c.kinds) for c in result.conflicts] == [("Dockerfile", ("removed",))]
    assert "git checkout HEAD -- Dockerfile" in result.conflicts[0].advice
    assert not (project / "Dockerfile").exists() and not (project / "compose.yaml").exists()
    assert "# our healthcheck tweak" in git(project, "show", "HEAD:Dockerfile")


# ---------------------------------------------------------------------------------------------
# 4. Refusals change nothing
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("change", ["modified", "untracked", "staged", "deleted"])
def test_a_dirty_tree_is_refused_and_left_untouched(project: Path, change: str) -> None:
    if change == "modified":
        append(project / "README.md", "work in progress\n")
        named = "README.md"
    elif change == "untracked":
        (project / "app/routers/draft.py").write_text("# draft\n")
        named = "app/routers/draft.py"
    elif change == "staged":
        (project / "NOTES.md").write_text("notes\n")
        git(project, "add", "NOTES.md")
        named = "NOTES.md"
    else:
        (project / "app/routers/health.py").unlink()
        named = "app/routers/health.py"
    before = snapshot(project)
    with pytest.raises(UsageError, match="uncommitted changes") as caught:
        update(project)
    assert named in str(caught.value)
    assert snapshot(project) == before


def test_a_folder_that_is_not_a_git_repository_is_refused(project: Path, tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    shutil.copytree(project, plain, ignore=shutil.ignore_patterns(".git"))
    before = snapshot_files(plain)
    with pytest.raises(UsageError, match="not a git repository"):
        update(plain)
    assert snapshot_files(plain) == before


def test_a_repository_without_answers_file_is_refused(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "README.md").write_text("hello\n")
    git(plain, "init", "--quiet")
    commit_all(plain, "first")
    with pytest.raises(UsageError, match=r"no \.copier-answers\.yml"):
        update(plain)
    with pytest.raises(UsageError, match="does not exist"):
        update(tmp_path / "missing")


def test_a_template_that_moved_away_is_named(project: Path, tmp_path: Path) -> None:
    answers = project / ANSWERS_FILE
    answers.write_text(
        re.sub(r"(?m)^_src_path: .*$", "_src_path: /nowhere/backforge", answers.read_text())
    )
    commit_all(project, "Point at a template that is gone")
    with pytest.raises(UsageError, match="_src_path: /nowhere/backforge"):
        update(project)


def snapshot_files(folder: Path) -> dict[str, bytes]:
    return {
        path.relative_to(folder).as_posix(): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"ci": "jenkins"}, "'jenkins' is not in"),
        ({"project_slug": "Bad Slug"}, "project_slug must match"),
        ({"dockr": False}, "unknown question.*dockr"),
    ],
)
def test_invalid_answers_are_refused_and_the_project_is_unchanged(
    project: Path, data: dict[str, Any], message: str
) -> None:
    before = snapshot(project)
    with pytest.raises(UsageError, match=message):
        update(project, data=data)
    assert snapshot(project) == before
    assert git(project, "status", "--porcelain") == ""


@pytest.mark.parametrize(
    ("start", "data", "named"),
    [
        pytest.param({}, {"database": "postgresql"}, "database", id="database"),
        pytest.param({}, {"auth": "none"}, "auth", id="auth-off"),
        pytest.param({"multi_tenant": True}, {"multi_tenant": False}, "multi_tenant", id="mt-off"),
        pytest.param({"multi_tenant": True}, {"auth": "none"}, "auth", id="auth-off-with-mt"),
        pytest.param({"features": ["email"]}, {"features": []}, "features", id="email-off"),
        pytest.param({"features": ["billing"]}, {"features": []}, "features", id="billing-off"),
    ],
)
def test_answers_that_cannot_change_are_refused_before_anything_is_written(
    repo: TemplateRepo,
    tmp_path: Path,
    start: dict[str, Any],
    data: dict[str, Any],
    named: str,
) -> None:
    project = render_at(repo, tmp_path / "shop", OLD, start)
    before = snapshot(project)
    with pytest.raises(UsageError, match=rf"(?m)^  {named}: cannot (change|switch off)") as caught:
        update(project, data=data)
    assert "refused before changing anything" in str(caught.value)
    assert snapshot(project) == before


def test_cli_refuses_a_database_change_with_exit_2(project: Path) -> None:
    before = snapshot(project)
    args = ["update", str(project), "--vcs-ref", NEW, "--no-install", "--trust"]
    result = CliRunner().invoke(cli_app, [*args, "-d", "database=mysql"])
    assert result.exit_code == 2, result.output
    assert "database: cannot change from 'sqlite' to 'mysql'" in " ".join(result.output.split())
    assert snapshot(project) == before


@pytest.mark.parametrize(
    ("before", "data", "refused"),
    [
        ({"database": "sqlite"}, {"database": "sqlite"}, []),
        ({"auth": "none"}, {"auth": "jwt"}, []),
        ({"auth": "jwt", "multi_tenant": False}, {"multi_tenant": "true"}, []),
        ({"auth": "jwt", "multi_tenant": True}, {"multi_tenant": "yes", "auth": "jwt"}, []),
        ({"auth": "none"}, {"multi_tenant": False}, []),
        ({"database": "mysql"}, {"database": "sqlite"}, ["database"]),
        ({"auth": "jwt", "multi_tenant": True}, {"multi_tenant": "no"}, ["multi_tenant"]),
        (
            {"database": "sqlite", "auth": "jwt", "multi_tenant": True},
            {"database": "postgresql", "auth": "none", "multi_tenant": False},
            ["database", "auth", "multi_tenant"],
        ),
        ({"auth": "jwt", "features": ["cache", "email"]}, {"features": ["cache"]}, ["features"]),
        ({"auth": "jwt", "features": ["email"]}, {"features": ["jobs", "email"]}, []),
        ({"auth": "jwt", "features": ["cache"]}, {"features": []}, []),
        ({"auth": "none", "features": ["email"]}, {"features": []}, []),  # no revision to lose
        ({"auth": "jwt", "features": ["billing", "cache"]}, {"features": ["cache"]}, ["features"]),
    ],
)
def test_refused_answer_changes_names_each_refused_answer(
    before: dict[str, Any],
    data: dict[str, Any],
    refused: list[str],
    tmp_path: Path,
) -> None:
    messages = refused_answer_changes(before, data)
    assert [message.split(":", 1)[0] for message in messages] == refused
    # The Copier migration that protects plain `copier update` users refuses the same answers.
    answers_file = tmp_path / ANSWERS_FILE
    answers_file.write_text(yaml.safe_dump(before), encoding="utf-8")
    hook = subprocess.run(
        [sys.executable, str(REFUSE_HOOK), str(answers_file), json.dumps(data)],
        capture_output=True,
        text=True,
        check=False,
    )
    lines = hook.stderr.splitlines()
    named = [line.removeprefix("refused: ").split(":", 1)[0] for line in lines[:-1]]
    assert (hook.returncode, named) == ((1, refused) if refused else (0, [])), hook.stderr


def test_plain_copier_update_refuses_a_database_change_before_writing(
    project: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    before = snapshot(project)
    with pytest.raises(copier.errors.TaskError):
        copier.run_update(
            str(project),
            data={"database": "postgresql"},
            defaults=True,
            overwrite=True,
            unsafe=True,
            vcs_ref=NEW,
            quiet=True,
        )
    refusal = "refused: database: cannot change from 'sqlite' to 'postgresql'"
    assert refusal in capfd.readouterr().err
    assert snapshot(project) == before


def test_an_unknown_revision_is_refused(project: Path) -> None:
    before = snapshot(project)
    with pytest.raises(UsageError, match=r"9\.9\.9"):
        update(project, vcs_ref="9.9.9")
    assert snapshot(project) == before


# ---------------------------------------------------------------------------------------------
# 5. An answer renamed through _migrations carries over
# ---------------------------------------------------------------------------------------------


def add_rename_release(repo: TemplateRepo, clone: Path, version: str) -> TemplateRepo:
    """Clone `repo` and release `version`, which renames author_name to maintainer_name."""
    git(clone.parent, "clone", "--quiet", repo.src, clone.name)
    config_path = clone / "copier.yml"
    config_text = re.sub(r"\bauthor_name\b", "maintainer_name", config_path.read_text())
    config = yaml.safe_load(config_text)
    assert "maintainer_name" in config, "the template has no author_name question to rename"
    migration = {
        "version": version,
        "when": "{{ _stage == 'before' }}",
        "command": [
            "{{ _copier_python }}",
            "{{ _copier_conf.src_path }}/hooks/rename_answer.py",
            "{{ _copier_conf.answers_file }}",
            "author_name",
            "maintainer_name",
        ],
    }
    config["_migrations"] = [*(config.get("_migrations") or []), migration]
    config_path.write_text(yaml.safe_dump(config, sort_keys=False, allow_unicode=True))
    for path in (clone / "template").rglob("*"):
        if path.is_file():
            text = path.read_text(encoding="utf-8")
            if "author_name" in text:
                path.write_text(re.sub(r"\bauthor_name\b", "maintainer_name", text))
    commit_all(clone, f"Template {version}: author_name is now maintainer_name")
    git(clone, "tag", version)
    return TemplateRepo(clone, repo.old_questions)


def test_an_answer_renamed_through_migrations_carries_over(
    repo: TemplateRepo, tmp_path: Path
) -> None:
    renamed = add_rename_release(repo, tmp_path / "template", "0.3.0")
    project = render_at(renamed, tmp_path / "shop", OLD, {"author_name": "Ada Lovelace"})
    assert answers_of(project)["author_name"] == "Ada Lovelace"
    # Copier runs the migration, then rejects the answer: the rewritten answers file is restored.
    before = snapshot(project)
    with pytest.raises(UsageError, match="'jenkins' is not in"):
        update(project, vcs_ref="0.3.0", data={"ci": "jenkins"})
    assert snapshot(project) == before

    result = update(project, vcs_ref="0.3.0")

    assert result.ok, result.conflicts
    answers = answers_of(project)
    assert answers["maintainer_name"] == "Ada Lovelace"
    assert "author_name" not in answers
    fresh = render_at(renamed, tmp_path / "fresh", "0.3.0", {"maintainer_name": "Ada Lovelace"})
    assert_same_tree(project, fresh)
    if "maintainer_name" in (renamed.path / "template/pyproject.toml.jinja").read_text():
        assert "Ada Lovelace" in (project / "pyproject.toml").read_text()


# ---------------------------------------------------------------------------------------------
# 6. Answers changed or added during the update arrive
# ---------------------------------------------------------------------------------------------


def _changed_answer_cases() -> list[Any]:
    return [
        pytest.param({"docker": False}, ["Dockerfile", "compose.yaml"], [], id="docker=false"),
        pytest.param(
            {"ci": "gitlab"}, [".github/workflows/ci.yml"], [".gitlab-ci.yml"], id="ci=gitlab"
        ),
        pytest.param({"update_probe": "beta"}, [], ["PROBE.md"], id="new-question=beta"),
        pytest.param({"update_probe": "none"}, ["PROBE.md"], [], id="new-question=none"),
        pytest.param({"features": "FIRST"}, [], [], id="features+first"),
    ]


@pytest.mark.parametrize(("data", "gone", "present"), _changed_answer_cases())
def test_answers_changed_during_the_update_arrive(
    repo: TemplateRepo,
    project: Path,
    tmp_path: Path,
    data: dict[str, Any],
    gone: list[str],
    present: list[str],
) -> None:
    if data.get("features") == "FIRST":
        features = next((q for q in load_questions(repo.path) if q.name == "features"), None)
        if features is None or not features.choices:
            pytest.skip("the template has no features question yet")
        data = {"features": [features.choices[0]]}
    result = update(project, data=data)
    assert result.ok, result.conflicts
    answers = answers_of(project)
    for key, value in data.items():
        assert answers[key] == value
    for relative in gone:
        assert not (project / relative).exists(), relative
    for relative in present:
        assert (project / relative).is_file(), relative
    if "update_probe" in data and data["update_probe"] != "none":
        assert (project / "PROBE.md").read_text() == f"Probe: {data['update_probe']}\n"
    fresh = render_at(repo, tmp_path / "fresh", NEW, data)
    assert_same_tree(project, fresh)
    assert empty_dirs(project) == empty_dirs(fresh)


@pytest.mark.parametrize(
    ("feature", "package_file", "setting"),
    [
        pytest.param("cache", "app/cache/store.py", "cache_ttl_seconds", id="cache"),
        pytest.param(
            "websockets", "app/realtime/router.py", "ws_max_message_bytes", id="websockets"
        ),
    ],
)
def test_adding_a_feature_to_an_edited_project_keeps_every_edit(
    project: Path, feature: str, package_file: str, setting: str
) -> None:
    """`-d 'features=[X]'` brings the feature's files, settings, dependency and compose
    service into a project the team has changed, through files the feature also changes."""
    readme, health = project / "README.md", project / "app/routers/health.py"
    replace_first_line(readme, "# Shop: the billing backend of ACME")
    append(health, USER_ROUTE)
    main_py = project / "app/main.py"
    append(main_py, "# Our note at the end of main.py\n")
    item_service = project / "app/services/item.py"
    replace_first_line(item_service, '"""Item rules, as ACME bills them."""')
    (project / "app/routers/billing.py").write_text("VALUE = 1\n", encoding="utf-8")
    commit_all(project, "Our changes")
    versions = {p.name: p.read_bytes() for p in (project / "migrations/versions").glob("*.py")}

    result = update(project, data={"features": [feature]})

    assert result.ok, result.conflicts
    assert answers_of(project)["features"] == [feature]
    assert readme.read_text().startswith("# Shop: the billing backend of ACME\n")
    assert health.read_text().endswith(USER_ROUTE)
    main_text = main_py.read_text()
    assert main_text.endswith("# Our note at the end of main.py\n")
    assert "feature_lifespan" in main_text
    assert (project / "app/routers/billing.py").read_text() == "VALUE = 1\n"
    assert item_service.read_text().startswith('"""Item rules, as ACME bills them."""\n')
    assert (project / package_file).is_file()
    assert (project / "app/core/redis.py").is_file()
    assert not (project / "app/ratelimit").exists()
    assert setting in (project / "app/core/config.py").read_text()
    assert "REDIS_URL=" in (project / ".env.example").read_text()
    assert '"redis[hiredis]>=' in (project / "pyproject.toml").read_text()
    assert "  redis:\n" in (project / "compose.yaml").read_text()
    assert {p.name: p.read_bytes() for p in (project / "migrations/versions").glob("*.py")} == (
        versions
    ), "an update changed a migration revision"
    assert not list(project.rglob("*.rej"))


def test_adding_jobs_to_an_edited_project_keeps_every_edit(project: Path) -> None:
    """`-d 'features=[jobs]'` brings the queue, the worker and scheduler services and the Redis
    plumbing into a project the team has changed, through files the feature also changes."""
    readme, main_py = project / "README.md", project / "app/main.py"
    replace_first_line(readme, "# Shop: the billing backend of ACME")
    append(main_py, "# Our note at the end of main.py\n")
    commit_all(project, "Our changes")
    versions = {p.name: p.read_bytes() for p in (project / "migrations/versions").glob("*.py")}

    result = update(project, data={"features": ["jobs"]})

    assert result.ok, result.conflicts
    assert answers_of(project)["features"] == ["jobs"]
    assert readme.read_text().startswith("# Shop: the billing backend of ACME\n")
    assert "Background jobs" in readme.read_text()
    assert main_py.read_text().endswith("# Our note at the end of main.py\n")
    assert (project / "app/jobs/worker.py").is_file()
    assert (project / "app/jobs/scheduler.py").is_file()  # the default answers have auth=jwt
    assert (project / "app/core/redis.py").is_file()
    assert '"taskiq-redis>=' in (project / "pyproject.toml").read_text()
    compose = (project / "compose.yaml").read_text()
    assert "  worker:\n" in compose and "  scheduler:\n" in compose and "  redis:\n" in compose
    assert {p.name: p.read_bytes() for p in (project / "migrations/versions").glob("*.py")} == (
        versions
    ), "an update changed a migration revision"


def test_adding_metrics_and_sentry_to_an_edited_project_keeps_every_edit(project: Path) -> None:
    """`-d 'features=[metrics, sentry]'` brings the observability package, settings,
    dependencies, Dockerfile and compose changes, through files the team has changed."""
    readme, config = project / "README.md", project / "app/core/config.py"
    dockerfile, main_py = project / "Dockerfile", project / "app/main.py"
    replace_first_line(readme, "# Shop: the billing backend of ACME")
    config.write_text(
        config.read_text().replace(
            "    debug: bool = False\n",
            '    debug: bool = False\n    billing_currency: str = "EUR"\n',
        )
    )
    lines = dockerfile.read_text().splitlines(keepends=True)
    dockerfile.write_text("".join([lines[0], "# Our base image notes\n", *lines[1:]]))
    append(main_py, "# Our note at the end of main.py\n")
    commit_all(project, "Our changes")

    result = update(project, data={"features": ["metrics", "sentry"]})

    assert result.ok, result.conflicts
    assert answers_of(project)["features"] == ["metrics", "sentry"]
    assert readme.read_text().startswith("# Shop: the billing backend of ACME\n")
    assert "**Metrics.**" in readme.read_text()
    config_text = config.read_text()
    assert 'billing_currency: str = "EUR"' in config_text
    assert "metrics_allowed_ips" in config_text
    assert "sentry_dsn" in config_text
    assert "# Our base image notes\n" in dockerfile.read_text()
    assert "ENV PROMETHEUS_MULTIPROC_DIR=" in dockerfile.read_text()
    assert main_py.read_text().endswith("# Our note at the end of main.py\n")
    assert (project / "app/observability/metrics.py").is_file()
    assert (project / "app/observability/sentry.py").is_file()
    assert not (project / "app/core/redis.py").exists()
    pyproject = (project / "pyproject.toml").read_text()
    assert '"prometheus-client>=' in pyproject
    assert '"sentry-sdk>=' in pyproject
    assert "METRICS_ALLOWED_IPS=" in (project / ".env.example").read_text()
    assert "PROMETHEUS_MULTIPROC_DIR: /tmp/prometheus" in (project / "compose.yaml").read_text()


def test_adding_email_brings_its_revision_and_keeps_every_edit(project: Path) -> None:
    """`-d 'features=[email]'` brings the account flows and their own revision (`email_0001`)
    into a project whose auth service and user model the team has changed; the revisions the
    database may have applied are untouched."""
    auth_service, user_model = project / "app/services/auth.py", project / "app/models/user.py"
    append(auth_service, "# Our note at the end of the auth service\n")
    append(user_model, "# Our note at the end of the user model\n")
    commit_all(project, "Our changes")
    folder = project / "migrations/versions"
    versions = {p.name: p.read_bytes() for p in folder.glob("*.py")}

    result = update(project, data={"features": ["email"]})

    assert result.ok, result.conflicts
    assert answers_of(project)["features"] == ["email"]
    service_text, model_text = auth_service.read_text(), user_model.read_text()
    assert service_text.endswith("# Our note at the end of the auth service\n")
    assert "send_verification" in service_text
    assert model_text.endswith("# Our note at the end of the user model\n")
    assert "email_verified_at" in model_text
    after = {p.name: p.read_bytes() for p in folder.glob("*.py")}
    assert {name: after.get(name) for name in versions} == versions
    assert set(after) - set(versions) == {"email_0001_account_tokens.py"}
    assert (project / "app/email/templates/password_reset.html.j2").is_file()
    assert (project / "app/routers/account.py").is_file()
    assert '"aiosmtplib>=' in (project / "pyproject.toml").read_text()
    assert "EMAIL_BACKEND=" in (project / ".env.example").read_text()
    assert not (project / "app/core/redis.py").exists()  # email needs no Redis
    assert not list(project.rglob("*.rej"))


def test_adding_billing_brings_its_revision_and_leaves_the_applied_ones(project: Path) -> None:
    """`-d 'features=[billing]'` brings billing and its own revision (`billing_0001`, after
    `auth_0001`); the revisions the database may have applied are untouched."""
    folder = project / "migrations/versions"
    versions = {p.name: p.read_bytes() for p in folder.glob("*.py")}

    result = update(project, data={"features": ["billing"]})

    assert result.ok, result.conflicts
    assert answers_of(project)["features"] == ["billing"]
    after = {p.name: p.read_bytes() for p in folder.glob("*.py")}
    assert {name: after.get(name) for name in versions} == versions
    assert set(after) - set(versions) == {"billing_0001_billing.py"}
    assert (
        'down_revision: str | None = "auth_0001"'
        in (folder / "billing_0001_billing.py").read_text()
    )
    assert (project / "app/billing/plans.py").is_file()
    assert (project / "app/routers/billing.py").is_file()
    assert '"stripe[async]>=' in (project / "pyproject.toml").read_text()
    assert "STRIPE_WEBHOOK_SECRET=" in (project / ".env.example").read_text()
    assert not (project / "app/core/redis.py").exists()  # billing needs no Redis
    assert not list(project.rglob("*.rej"))


def _switched_on(project: Path, feature: str, revision: str) -> None:
    """`-d 'features=[FEATURE]'` later: its revision alone comes into migrations/versions,
    revising auth_0001, every revision there before unchanged, nothing rejected."""
    folder = project / "migrations/versions"
    versions = {p.name: p.read_bytes() for p in folder.glob("*.py")}

    result = update(project, data={"features": [feature]})

    assert result.ok, result.conflicts
    after = {p.name: p.read_bytes() for p in folder.glob("*.py")}
    assert {name: after.get(name) for name in versions} == versions
    assert set(after) - set(versions) == {revision}
    assert 'down_revision: str | None = "auth_0001"' in (folder / revision).read_text()
    assert not list(project.rglob("*.rej"))


def test_adding_audit_brings_its_revision_and_its_writes(project: Path) -> None:
    """Switched on later, audit starts an empty log (`audit_0001`), and the item service writes
    audit rows from then on."""
    _switched_on(project, "audit", "audit_0001_audit_events.py")
    assert "await self.audit.record(" in (project / "app/services/item.py").read_text()
    assert (project / "app/routers/audit.py").is_file()


def test_adding_totp_brings_its_revision_and_the_second_step_of_sign_in(project: Path) -> None:
    """Switched on later, totp brings `totp_0001` (no user enrolled), and a password sign-in
    ends in `finish_sign_in`'s 2FA check."""
    _switched_on(project, "totp", "totp_0001_totp.py")
    auth = (project / "app/services/auth.py").read_text()
    assert "TotpRepository(self.session).is_enabled" in auth
    assert (project / "app/routers/two_factor.py").is_file()


# ---------------------------------------------------------------------------------------------
# Installing: uv lock and uv sync after a clean update, nothing committed
# ---------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_install_relocks_and_syncs_without_committing(project: Path) -> None:
    head = git(project, "rev-parse", "HEAD")
    result = update(project, install=True)
    assert result.ok, result.install_error
    assert result.installed
    assert (project / "uv.lock").is_file()
    assert (project / ".venv").is_dir()
    assert "uv.lock" in result.changed
    assert git(project, "rev-parse", "HEAD") == head
    assert "?? uv.lock" in git(project, "status", "--porcelain").splitlines()


# ---------------------------------------------------------------------------------------------
# The command line: exit codes and what it prints
# ---------------------------------------------------------------------------------------------


def test_cli_update_exit_codes(project: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    clean = runner.invoke(
        cli_app, ["update", str(project), "--vcs-ref", NEW, "--no-install", "--trust"]
    )
    assert clean.exit_code == 0, clean.output
    assert f"→ {NEW}" in clean.output
    assert answers_of(project)["_commit"] == NEW
    commit_all(project, "Update")

    not_a_repo = runner.invoke(cli_app, ["update", str(tmp_path / "nowhere"), "--no-install"])
    assert not_a_repo.exit_code == 2


def test_cli_update_lists_conflicts_and_exits_1(repo: TemplateRepo, tmp_path: Path) -> None:
    project = render_at(repo, tmp_path / "shop", OLD, {})
    _edit_conflicting_lines(project)
    result = CliRunner().invoke(
        cli_app,
        ["update", str(project), "--vcs-ref", NEW, "--conflict", "rej", "--no-install", "--trust"],
    )
    assert result.exit_code == 1, result.output
    assert "conflict" in result.output
    assert "app/routers/health.py" in result.output
    assert (project / "app/routers/health.py.rej").is_file()
    (project / "README.md").write_text("dirty\n")
    dirty = CliRunner().invoke(cli_app, ["update", str(project), "--no-install", "--trust"])
    assert dirty.exit_code == 2
    assert "README.md" in dirty.output


def test_cli_new_renders_the_requested_revision(repo: TemplateRepo, tmp_path: Path) -> None:
    dest = tmp_path / "pinned"
    args = ["new", str(dest), "--template", repo.src, "--vcs-ref", OLD, "--defaults", "--trust"]
    result = CliRunner().invoke(cli_app, [*args, "-d", "project_name=Pinned", "--no-install"])
    assert result.exit_code == 0, result.output
    assert answers_of(dest)["_commit"] == OLD
    assert not (dest / "docs/UPDATING.md").exists(), "0.2.0's file must not be in a 0.1.0 render"


# ---------------------------------------------------------------------------------------------
# Messages (issue 27)
# ---------------------------------------------------------------------------------------------


def test_update_outside_a_project_says_first_that_it_is_not_one(tmp_path: Path) -> None:
    plain = tmp_path / "plain"  # neither a project nor a git repository
    plain.mkdir()
    with pytest.raises(UsageError, match="is not a backforge project"):
        update(plain)
    result = CliRunner().invoke(cli_app, ["update", str(plain), "--no-install"])
    assert result.exit_code == 2
    text = " ".join(result.output.split())
    assert "is not a backforge project" in text
    assert "git" not in text.split("is not a backforge project")[0]
    assert "git repository" not in text


def test_an_update_to_the_same_version_says_so_and_suggests_no_commit(
    repo: TemplateRepo, tmp_path: Path
) -> None:
    project = render_at(repo, tmp_path / "shop", NEW, {})
    before = snapshot(project)
    args = ["update", str(project), "--vcs-ref", NEW, "--no-install", "--trust"]
    result = CliRunner().invoke(cli_app, args)
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert f"already at template {NEW}: nothing changed" in text
    assert "commit -m" not in text
    assert snapshot(project) == before
    assert update(project).next_steps() == []


@pytest.mark.parametrize(
    ("data", "named"),
    [
        ({"database": "oracle"}, "database: 'oracle' is not in the values it accepts: sqlite"),
        ({"multi_tenant": "maybe"}, "multi_tenant: 'maybe' is not a yes/no answer"),
        ({"features": "cache,teleport"}, "features: 'teleport' is not one of its values"),
        ({"dockr": False}, "did you mean 'docker'?"),
    ],
)
def test_an_invalid_value_is_named_before_any_refused_change(
    project: Path, data: dict[str, Any], named: str
) -> None:
    before = snapshot(project)
    with pytest.raises(UsageError) as caught:
        update(project, data=data)
    assert named in str(caught.value)
    assert "cannot change" not in str(caught.value)
    assert snapshot(project) == before


@pytest.mark.parametrize(
    ("versions", "changed", "message"),
    [
        (("1.0", "1.1"), (ANSWERS_FILE, "app/main.py"), "Update to template 1.1"),
        (("1.1", "1.1"), (ANSWERS_FILE, "Dockerfile"), "Change the answers of template 1.1"),
        (("1.1", "1.1"), ("uv.lock",), "Lock dependencies"),  # a project never locked before
    ],
)
def test_the_suggested_commit_says_what_the_update_changed(
    tmp_path: Path, versions: tuple[str, str], changed: tuple[str, ...], message: str
) -> None:
    result = UpdateResult(tmp_path, *versions, changed=changed, conflicts=(), installed=True)
    assert result.next_steps()[-1] == f'git add -A && git commit -m "{message}"'


def test_an_answer_the_project_would_not_be_asked_is_refused(
    repo: TemplateRepo, tmp_path: Path
) -> None:
    """`-d multi_tenant=true` on an `auth=none` project: Copier would drop it without a word."""
    project = render_at(repo, tmp_path / "shop", OLD, {"auth": "none"})
    before = snapshot(project)
    with pytest.raises(UsageError) as caught:
        update(project, data={"multi_tenant": True})
    assert "multi_tenant: not asked with these answers (when: {{ auth == 'jwt' }})" in str(
        caught.value
    )
    assert snapshot(project) == before


def test_cli_update_names_an_invalid_database_before_the_refusal(project: Path) -> None:
    args = ["update", str(project), "--vcs-ref", NEW, "--no-install", "--trust"]
    result = CliRunner().invoke(cli_app, [*args, "-d", "database=oracle"])
    assert result.exit_code == 2, result.output
    text = " ".join(result.output.split())
    assert "database: 'oracle' is not in the values it accepts" in text
    assert "cannot change" not in text


def test_switching_kubernetes_on_later_brings_the_manifests(
    repo: TemplateRepo, tmp_path: Path
) -> None:
    """A project made without kubernetes gets deploy/kubernetes/ when it switches it on, exactly
    as a fresh render with the answer has it."""
    before = {"database": "postgresql", "features": ["jobs"]}
    project = render_at(repo, tmp_path / "shop", OLD, before)
    assert not (project / "deploy").exists()
    result = update(project, data={"kubernetes": True})
    assert result.ok, result.conflicts
    assert answers_of(project)["kubernetes"] is True
    for relative in (
        "base/kustomization.yaml",
        "base/worker.yaml",
        "overlays/production/kustomization.yaml",
    ):
        assert (project / "deploy/kubernetes" / relative).is_file(), relative
    fresh = render_at(repo, tmp_path / "fresh", NEW, {**before, "kubernetes": True})
    assert_same_tree(project, fresh)
