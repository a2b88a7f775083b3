"""`backforge check`'s engine (backforge.check) and its reports (backforge.report)."""

from __future__ import annotations

import collections
import importlib.util
import io
import json
import sqlite3
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import copier._user_data
import copier._vcs
import pytest
import yaml
from rich.console import Console

from backforge import check, report
from backforge.check import (
    FULL_STEPS,
    STATIC_STEPS,
    CheckOptions,
    CheckProgress,
    FileIndex,
    VariantResult,
    byte_compile_files,
    exit_status,
    no_jinja_files,
    ruff_check_layers,
    ruff_format_layers,
    run_check,
)
from backforge.model import select
from backforge.steps.fast_render import static_renders, template_snapshot
from backforge.steps.full import SharedTypeCache
from backforge.steps.openapi import shared_environment
from backforge.steps.results import StepFailed, StepResult
from backforge.steps.static import render_variant
from backforge.steps.tools import run_tool

REPO = Path(__file__).resolve().parent.parent

RUFF_CONFIG = """
[tool.ruff]
line-length = 100
target-version = "py311"

[tool.ruff.lint]
select = ["E", "F", "I"]
"""

CLEAN_MAIN = "import os\n\nVALUE = os.sep\n"
UNUSED_IMPORT_MAIN = "import os\nimport sys\n\nVALUE = os.sep\n"
UNFORMATTED_MAIN = "import os\n\nVALUE=os.sep\n"
TEST_MODULE = (
    "import os\n\nfrom app.main import VALUE\n\n\n"
    "def test_value() -> None:\n    assert VALUE == os.sep{}\n"
)


def make_project(root: Path, name: str, files: dict[str, str]) -> Path:
    project = root / name
    for relative, text in files.items():
        path = project / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return project


def pyproject(dependency: str, config: str = RUFF_CONFIG) -> str:
    return f'[project]\nname = "x"\nversion = "0"\ndependencies = ["{dependency}"]\n{config}'


def three_variants(tmp_path: Path, main_a: str, main_b: str) -> dict[str, Path]:
    """a and c share app/main.py (main_a); b has its own (main_b) and an extra module."""
    common = {"app/__init__.py": "", "app/db/__init__.py": "", "app/db/base.py": "BASE = 1\n"}
    return {
        "a": make_project(
            tmp_path,
            "a",
            {
                **common,
                "app/main.py": main_a,
                "pyproject.toml": pyproject("aiosqlite"),
                ".copier-answers.yml": "database: sqlite\n",
                "tests/test_main.py": TEST_MODULE.format(""),
            },
        ),
        "b": make_project(
            tmp_path,
            "b",
            {
                **common,
                "app/main.py": main_b,
                "app/extra.py": "EXTRA = 2\n",
                "pyproject.toml": pyproject("asyncpg"),
                ".copier-answers.yml": "database: postgresql\n",
                "tests/test_main.py": TEST_MODULE.format("  # b"),
            },
        ),
        "c": make_project(
            tmp_path,
            "c",
            {
                **common,
                "app/main.py": main_a,
                "pyproject.toml": pyproject("asyncmy"),
                ".copier-answers.yml": "database: mysql\n",
                "tests/test_main.py": TEST_MODULE.format(""),
            },
        ),
    }


# ---------------------------------------------------------------------------------------------
# Deduplication and layering
# ---------------------------------------------------------------------------------------------


def test_identical_files_are_indexed_once(tmp_path: Path) -> None:
    index = FileIndex(three_variants(tmp_path, CLEAN_MAIN, UNUSED_IMPORT_MAIN))
    assert index.configs() == [index.files["a"]["pyproject.toml"].config]
    main_a, main_b = index.files["a"]["app/main.py"], index.files["b"]["app/main.py"]
    assert index.files["c"]["app/main.py"] == main_a != main_b
    assert index.variants_of(main_a) == ["a", "c"]
    assert index.variants_of(main_b) == ["b"]
    assert index.variants_of(index.files["a"]["app/db/base.py"]) == ["a", "b", "c"]
    paths = [key.path for key in index.distinct()]
    assert paths.count("app/db/base.py") == 1
    assert paths.count("app/main.py") == 2
    assert paths.count("pyproject.toml") == 3  # the dependencies differ, not the ruff config


def test_layers_hold_each_distinct_version_once_and_keep_the_tree(tmp_path: Path) -> None:
    index = FileIndex(three_variants(tmp_path, CLEAN_MAIN, UNUSED_IMPORT_MAIN))
    layout = index.layout(tmp_path / "lint")
    (dirs,) = layout.dirs.values()
    # two versions of app/main.py and tests/test_main.py; pyproject.toml has a third, alone
    assert len(dirs) == 3
    owned = sorted(
        (path.relative_to(tmp_path / "lint").parts[0], key.path)
        for path, key in layout.owner.items()
    )
    assert sorted(key.path for key in layout.owner.values()) == sorted(
        key.path for key in index.distinct() if key.path != ".copier-answers.yml"
    )
    assert len(owned) == len(set(owned))
    second = dirs[1]
    assert (second / "app/main.py").read_text() == UNUSED_IMPORT_MAIN
    assert (second / "app/__init__.py").read_text() == ""  # a stand-in package marker
    assert second / "app/__init__.py" not in layout.owner
    # Every module keeps its path (ruff sorts `from app.db.base import x` as first-party only
    # when app/db/base.py exists): an empty stand-in that owns nothing.
    assert (second / "app/db/base.py").read_text() == ""
    assert second / "app/db/base.py" not in layout.owner
    assert (second / "pyproject.toml").is_file()
    assert [p.name for p in dirs[2].rglob("*") if p.is_file()] == ["pyproject.toml"]
    assert not any(p.name == ".copier-answers.yml" for p in layout.owner)


def test_a_lint_failure_is_attributed_to_exactly_the_variants_with_that_file(
    tmp_path: Path,
) -> None:
    index = FileIndex(three_variants(tmp_path, UNUSED_IMPORT_MAIN, CLEAN_MAIN))
    layout = index.layout(tmp_path / "lint")
    results = ruff_check_layers(index, layout)
    assert {vid: r.status for vid, r in results.items()} == {
        "a": "failed",
        "b": "passed",
        "c": "failed",
    }
    for vid in ("a", "c"):
        assert "app/main.py:2:8: F401 `sys` imported but unused" in results[vid].output
        assert str(tmp_path) not in results[vid].output  # paths as in the project
    # tests/test_main.py sorts `app` as first-party in every layer: no I001 anywhere
    assert all("I001" not in r.output for r in results.values())


def test_a_format_failure_shows_the_diff_for_exactly_its_variants(tmp_path: Path) -> None:
    index = FileIndex(three_variants(tmp_path, CLEAN_MAIN, UNFORMATTED_MAIN))
    results = ruff_format_layers(index, index.layout(tmp_path / "lint"))
    assert [vid for vid, r in results.items() if r.status == "failed"] == ["b"]
    assert "--- app/main.py" in results["b"].output
    assert "+VALUE = os.sep" in results["b"].output


def test_variants_with_another_ruff_config_are_linted_with_theirs(tmp_path: Path) -> None:
    long_line = f"NAME = '{'x' * 90}'\n"
    strict = RUFF_CONFIG.replace("line-length = 100", "line-length = 80")
    projects = {
        "wide": make_project(
            tmp_path, "wide", {"m.py": long_line, "pyproject.toml": pyproject("a")}
        ),
        "narrow": make_project(
            tmp_path, "narrow", {"m.py": long_line, "pyproject.toml": pyproject("a", strict)}
        ),
    }
    index = FileIndex(projects)
    assert len(index.configs()) == 2
    results = ruff_check_layers(index, index.layout(tmp_path / "lint"))
    assert results["wide"].status == "passed"
    assert results["narrow"].status == "failed"
    assert "m.py:1:81: E501" in results["narrow"].output


def test_jinja_and_syntax_errors_are_attributed_per_distinct_file(tmp_path: Path) -> None:
    projects = {
        "ok": make_project(tmp_path, "ok", {"app/x.py": "X = 1\n", "README.md": "# hi\n"}),
        "jinja": make_project(tmp_path, "jinja", {"app/x.py": "X = 1\n", "README.md": "{{ x }}\n"}),
        "syntax": make_project(
            tmp_path, "syntax", {"app/x.py": "def f(:\n", "README.md": "# hi\n"}
        ),
    }
    index = FileIndex(projects)
    jinja = no_jinja_files(index)
    assert [vid for vid, r in jinja.items() if r.status == "failed"] == ["jinja"]
    assert "README.md:1: {{ x }}" in jinja["jinja"].output
    compiled = byte_compile_files(index)
    assert [vid for vid, r in compiled.items() if r.status == "failed"] == ["syntax"]
    assert compiled["syntax"].output.startswith("app/x.py:1:")


def test_openapi_runner_isolates_each_project_and_reports_failures(tmp_path: Path) -> None:
    code = (
        "import os, sys\n"
        "import app.main as main\n"
        "print(main.NAME, os.environ.get('LEAK'), sorted(m for m in sys.modules if m == 'json'))\n"
    )
    good = make_project(tmp_path, "good", {"app/__init__.py": "", "app/main.py": "NAME = 'g'\n"})
    other = make_project(tmp_path, "other", {"app/__init__.py": "", "app/main.py": "NAME = 'o'\n"})
    bad = make_project(tmp_path, "bad", {"app/__init__.py": "", "app/main.py": "import nope\n"})
    runner = check.OpenAPIRunner(
        sys.executable, workers=1, preload=["json"], scratch=tmp_path / "scratch", code=code
    )
    with runner:
        assert runner.run(good, {"LEAK": "1"}).strip() == "g 1 ['json']"
        assert runner.run(other, {}).strip() == "o None ['json']"  # nothing left from `good`
        with pytest.raises(StepFailed) as failure:
            runner.run(bad, {})
        assert "ModuleNotFoundError: No module named 'nope'" in failure.value.output
        assert runner.run(good, {}).strip() == "g None ['json']"  # the worker survived


def test_compiled_files_are_linked_into_each_variant_as_hash_checked_pycs(
    tmp_path: Path,
) -> None:
    projects = {
        name: make_project(tmp_path, name, {"app/__init__.py": "", "app/x.py": "X = 1\n"})
        for name in ("one", "two")
    }
    index = FileIndex(projects)
    assert all(r.status == "passed" for r in byte_compile_files(index, tmp_path / "pyc").values())
    one, two = (
        Path(importlib.util.cache_from_source(str(p / "app/x.py"))) for p in projects.values()
    )
    assert one.stat().st_ino == two.stat().st_ino  # one compilation for both
    assert one.read_bytes()[4:8] == (3).to_bytes(4, "little")  # hash-based, checked
    (projects["two"] / "app/x.py").write_text("X = 2\n")  # a stale .pyc is never used
    result = subprocess.run(
        [sys.executable, "-c", "import app.x; print(app.x.X)"],
        cwd=projects["two"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.strip() == "2"


def test_the_openapi_worker_imports_what_a_child_imported_before_the_next_fork(
    tmp_path: Path,
) -> None:
    code = "import sys\nimport app.main\nprint('csv' in sys.modules)\n"
    main = {"app/__init__.py": "", "app/main.py": "import sys\nprint('csv' in sys.modules)\n"}
    first = make_project(tmp_path, "first", {**main, "app/main.py": "import csv\n"})
    second = make_project(tmp_path, "second", main)
    runner = check.OpenAPIRunner(
        sys.executable, workers=1, preload=[], scratch=tmp_path / "scratch", code=code
    )
    with runner:
        assert runner.run(second, {}).split() == ["False", "False"]
        assert runner.run(first, {}).split() == ["True"]
        assert runner.run(second, {}).split() == ["True", "True"]  # csv: preloaded since


def test_shared_environments_hold_compiled_packages(tmp_path: Path) -> None:
    """The OpenAPI workers run with PYTHONDONTWRITEBYTECODE: packages installed without their
    bytecode were compiled again by every worker of every run (13 % of a 40-variant run's CPU).
    A second call reuses the environment."""
    python = shared_environment(["idna"], tmp_path / "cache")
    site = Path(python).parent.parent / "lib"
    compiled = list(site.glob("python3*/site-packages/idna/__pycache__/core.*.pyc"))
    assert compiled, sorted(p.name for p in site.glob("python3*/site-packages/idna/**/*"))
    assert shared_environment(["idna"], tmp_path / "cache") == python


def test_a_projects_tools_write_bytecode_whatever_backforge_inherited(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A project's processes share the bytecode the first one wrote, also on a machine that sets
    PYTHONDONTWRITEBYTECODE (CI's does); a caller may still ask for none, and backforge's own
    virtual environment is never passed on."""
    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")
    monkeypatch.setenv("VIRTUAL_ENV", str(tmp_path / "backforge-venv"))
    probe = "import os, shared; print(os.environ.get('VIRTUAL_ENV'))"
    for name, env in (("written", None), ("asked-for-none", {"PYTHONDONTWRITEBYTECODE": "1"})):
        project = tmp_path / name
        project.mkdir()
        (project / "shared.py").write_text("VALUE = 1\n")
        output = run_tool([sys.executable, "-c", probe], project, env=env)
        assert output.split() == ["None"], output
        compiled = sorted(p.name for p in project.glob("__pycache__/shared.*.pyc"))
        assert bool(compiled) == (env is None), (name, compiled)


def test_static_renders_are_byte_identical_to_plain_copier(tmp_path: Path) -> None:
    """One clone, no per-file git, compiled Jinja reused: the same files as plain Copier's."""
    variants = select(REPO, "database=mysql,auth=jwt,multi_tenant=true,features=[cache,rate_limit]")
    variants += select(REPO, "database=sqlite,auth=none")
    snapshot = template_snapshot(str(REPO), "HEAD", tmp_path)
    assert snapshot is not None
    for number, answers in enumerate(variants):
        plain, fast = tmp_path / f"plain{number}", tmp_path / f"fast{number}"
        render_variant(str(REPO), plain, answers, vcs_ref="HEAD", tasks=False)
        with static_renders():
            render_variant(snapshot, fast, answers, vcs_ref=None, tasks=False)
        files = sorted(p.relative_to(plain) for p in plain.rglob("*") if p.is_file())
        assert files == sorted(p.relative_to(fast) for p in fast.rglob("*") if p.is_file())
        for relative in files:
            if relative.name == ".copier-answers.yml":  # names its source and commit
                assert _answers_kept(plain / relative) == _answers_kept(fast / relative)
                continue
            assert (plain / relative).read_bytes() == (fast / relative).read_bytes(), relative
            assert (plain / relative).stat().st_mode == (fast / relative).stat().st_mode


def _answers_kept(path: Path) -> list[str]:
    lines = path.read_text(encoding="utf-8").splitlines()
    kept = [line for line in lines if not line.startswith(("_commit:", "_src_path:"))]
    assert len(kept) > 5
    return kept


def test_static_renders_merge_the_answers_once_per_render(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Copier rebuilt its render context, merging the answers from their sources (a ChainMap),
    for every path part and file: about 1,900 merges per variant, a quarter of a render's CPU.
    `static_renders` merges them once per render; the previous test proves the same files."""
    merges = [0]

    class CountingChainMap(collections.ChainMap[str, Any]):
        def __init__(self, *maps: Any) -> None:
            merges[0] += 1
            super().__init__(*maps)

    monkeypatch.setattr(copier._user_data, "ChainMap", CountingChainMap)
    snapshot = template_snapshot(str(REPO), "HEAD", tmp_path)
    assert snapshot is not None
    (answers,) = select(REPO, "database=postgresql,features=[cache,jobs]")
    render_variant(snapshot, tmp_path / "plain", answers, tasks=False)
    plain, merges[0] = merges[0], 0
    with static_renders():
        render_variant(snapshot, tmp_path / "fast", answers, tasks=False)
    assert plain > 1000
    assert merges[0] < 100, f"{merges[0]} merges of the answers (plain Copier: {plain})"


def test_static_renders_run_no_git_and_read_copier_yml_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Plain Copier ran three git processes per render to learn that the snapshot is no
    repository, and parsed copier.yml for every render."""
    counts = collections.Counter[str]()
    get_git, load_all = copier._vcs.get_git, yaml.load_all

    def counting_git(*args: Any, **kwargs: Any) -> Any:
        counts["git"] += 1
        return get_git(*args, **kwargs)

    def counting_load_all(*args: Any, **kwargs: Any) -> Any:
        counts["yaml"] += 1
        return load_all(*args, **kwargs)

    monkeypatch.setattr(copier._vcs, "get_git", counting_git)
    monkeypatch.setattr(yaml, "load_all", counting_load_all)
    snapshot = template_snapshot(str(REPO), "HEAD", tmp_path)
    assert snapshot is not None
    variants = select(REPO, "database=mysql;database=sqlite,auth=none")
    counts.clear()  # the snapshot's clone and `select` ran git and read copier.yml
    for number, answers in enumerate(variants):
        with static_renders():
            render_variant(snapshot, tmp_path / f"fast{number}", answers, tasks=False)
        assert (tmp_path / f"fast{number}" / "app" / "main.py").is_file()
    assert counts == {"yaml": 1}


# ---------------------------------------------------------------------------------------------
# Reports
# ---------------------------------------------------------------------------------------------


def sample_results() -> list[VariantResult]:
    passed = VariantResult(
        id="sqlite-none",
        answers={"project_name": "Forge App", "database": "sqlite", "features": []},
        tier="static",
        reproduce="backforge new /tmp/sqlite-none --template . --defaults",
        steps=[StepResult(name, "passed", 0.25, "") for name in STATIC_STEPS],
    )
    failed_steps = [StepResult(name, "passed", 0.5, "") for name in FULL_STEPS[:7]]
    failed_steps.append(
        StepResult("mypy", "failed", 3.0, "\x1b[31mapp/main.py:3: error: bad <type> & co\x1b[0m")
    )
    failed_steps += [StepResult(name, "skipped") for name in FULL_STEPS[8:]]
    failed = VariantResult(
        id="mysql-jwt",
        answers={"project_name": "Forge App", "database": "mysql", "features": ["cache"]},
        tier="full",
        reproduce="backforge new /tmp/mysql-jwt --template . --defaults -d database=mysql",
        steps=failed_steps,
    )
    return [passed, failed]


def test_json_has_one_record_per_variant(tmp_path: Path) -> None:
    path = tmp_path / "out" / "check.json"
    report.write_json(path, sample_results())
    records = json.loads(path.read_text())
    assert [r["id"] for r in records] == ["sqlite-none", "mysql-jwt"]
    first, second = records
    assert first["ok"] is True and first["failed_step"] is None
    assert first["tier"] == "static"
    assert first["answers"]["database"] == "sqlite"
    assert [s["name"] for s in first["steps"]] == list(STATIC_STEPS)
    assert {s["status"] for s in first["steps"]} == {"passed"}
    assert first["steps"][0]["seconds"] == 0.25
    assert first["reproduce"].startswith("backforge new")
    assert second["ok"] is False and second["failed_step"] == "mypy"
    mypy = next(s for s in second["steps"] if s["name"] == "mypy")
    assert "error: bad" in mypy["output"]
    assert second["steps"][-1]["status"] == "skipped"


def test_junit_xml_parses_with_a_suite_per_tier_and_a_case_per_variant(tmp_path: Path) -> None:
    path = tmp_path / "junit.xml"
    report.write_junit(path, sample_results())
    root = ET.parse(path).getroot()  # noqa: S314 - our own file
    assert root.tag == "testsuites"
    assert (root.get("tests"), root.get("failures")) == ("2", "1")
    suites = root.findall("testsuite")
    assert [s.get("name") for s in suites] == [
        "backforge check (static tier)",
        "backforge check (full tier)",
    ]
    (static_case,) = suites[0].findall("testcase")
    assert static_case.get("name") == "sqlite-none"
    assert static_case.get("classname") == "backforge.static"
    assert static_case.find("failure") is None
    (full_case,) = suites[1].findall("testcase")
    failure = full_case.find("failure")
    assert failure is not None
    assert failure.get("type") == "mypy"
    assert "step mypy failed" in (failure.get("message") or "")
    assert "-d database=mysql" in (failure.get("message") or "")
    assert "bad <type> & co" in (failure.text or "")
    assert "\x1b" not in (failure.text or "")
    system_out = full_case.findtext("system-out") or ""
    assert "database: mysql" in system_out and "features: [cache]" in system_out
    assert float(full_case.get("time") or 0) == pytest.approx(6.5)


def test_console_report_shows_table_and_each_failure() -> None:
    console = Console(record=True, width=200, file=io.StringIO())
    report.print_report(sample_results(), console, seconds=30.0)
    text = console.export_text()
    assert "sqlite-none" in text and "mysql-jwt" in text
    assert "FAILED" in text
    assert "failed step: mypy" in text
    assert "app/main.py:3: error: bad <type> & co" in text
    assert "reproduce: backforge new /tmp/mysql-jwt" in text
    assert "database: mysql" in text
    assert "2 variants: 1 passed, 1 failed in 30.0 s (4.0 variants/min)" in text


def test_summary_table_lists_failures_first_when_long() -> None:
    passed, failed = sample_results()
    many = [passed] * 10 + [failed]
    console = Console(record=True, width=200, file=io.StringIO())
    console.print(report.summary_table(many, max_rows=3))
    text = console.export_text()
    assert "mysql-jwt" in text
    assert "8 more (0 failed)" in text


def test_progress_bar_accepts_progress_events() -> None:
    console = Console(record=True, width=200, file=io.StringIO())
    with report.progress_bar(console) as update:
        update(CheckProgress(completed=3, total=6, passed=0, failed=1, message="ruff check"))
        update(CheckProgress(completed=6, total=6, passed=0, failed=1, message="done"))
    assert "6/6" in console.export_text()


def test_exit_status() -> None:
    passed, failed = sample_results()
    assert exit_status([passed]) == 0
    assert exit_status([passed, failed]) == 1
    assert exit_status([]) == 0


# ---------------------------------------------------------------------------------------------
# Real runs on this repository's template
# ---------------------------------------------------------------------------------------------


def test_static_tier_passes_for_a_sample_of_the_real_template(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The run loop on real variants: parallel renders, progress, results in order. A sample of
    24: the static tier over the `3wise` set runs once, in test_check_sets.py."""
    monkeypatch.setattr(check, "PARALLEL_RENDER_MIN", 2)  # render in worker processes
    variants = select(REPO, "sample:24:5")
    assert len(variants) == 24
    events: list[CheckProgress] = []
    started = time.perf_counter()
    results = run_check(
        str(REPO),
        variants,
        CheckOptions(jobs=2, work_dir=tmp_path / "work", on_progress=events.append),
    )
    seconds = time.perf_counter() - started
    failures = {r.id: (r.failed.name, r.failed.tail) for r in results if r.failed}
    assert not failures, failures
    assert exit_status(results) == 0
    assert [r.answers for r in results] == variants
    assert len({r.id for r in results}) == len(results)
    for result in results:
        assert [s.name for s in result.steps] == list(STATIC_STEPS)
        assert "paths" in result.steps[-1].output
        assert result.reproduce.startswith("backforge new ")
        assert result.project is not None and (result.project / "app/main.py").is_file()
    assert events[-1].completed == events[-1].total == len(variants) * len(STATIC_STEPS)
    assert events[-1].passed == len(variants)
    print(f"\nstatic tier: {len(variants)} variants in {seconds:.1f} s")


def test_a_temporary_work_dir_is_removed(tmp_path: Path) -> None:
    (variant,) = select(REPO, "database=sqlite")
    (result,) = run_check(str(REPO), [variant], CheckOptions(jobs=1))
    assert result.ok, result.failed
    assert result.project is None


def _typed_project(root: Path, name: str, lib: str) -> Path:
    """A project whose own code type-checks or not depending on `lib`, with a `.venv` that
    sees this interpreter's packages (mypy among them)."""
    project = make_project(
        root,
        name,
        {
            "pyproject.toml": '[tool.mypy]\nstrict = true\nfiles = ["app"]\n',
            "app/__init__.py": "",
            "app/lib.py": lib,
            "app/core.py": "import yaml\n\nfrom app.lib import answer\n\nTOTAL: int = answer()\n"
            "LOADED: object = yaml.safe_load('a: 1')\n",
        },
    )
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", project / ".venv"], check=True)
    site = next((project / ".venv" / "lib").glob("python3*/site-packages"))
    ours = [p for p in sys.path if p.endswith("site-packages")]
    (site / "backforge-packages.pth").write_text("\n".join(ours) + "\n", encoding="utf-8")
    return project


def test_variants_share_mypys_package_cache_but_never_their_own_modules(tmp_path: Path) -> None:
    shared = SharedTypeCache(tmp_path / "mypy-cache")
    good = _typed_project(tmp_path, "good", "def answer() -> int:\n    return 42\n")
    assert "Success" in shared.mypy(good)
    rows = [
        path
        for db in (tmp_path / "mypy-cache").rglob("*.db")
        for (path,) in sqlite3.connect(db).execute("SELECT path FROM files2")
    ]
    assert any(path.startswith("yaml/") for path in rows)  # a package's entries are shared
    assert any(path.startswith("builtins.") for path in rows)
    assert not [path for path in rows if path.split("/")[0].split(".")[0] == "app"]
    assert not (good / ".mypy_cache").exists()
    # Same app/core.py, another app/lib.py: a cached `app.core` would hide this error.
    bad = _typed_project(tmp_path, "bad", "def answer() -> str:\n    return 'x'\n")
    with pytest.raises(StepFailed, match=r"app/core\.py:5: error: Incompatible types"):
        shared.mypy(bad)
    assert "Success" in shared.mypy(good)


def test_the_full_tier_starts_the_variants_with_the_longest_suites_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two workers finish together when the last variants to start are short ones: the full
    tier runs the variants by their suites' size (twice under the coverage gate), largest
    first, and reports them in the order given."""
    sizes = {"sqlite": 3_000, "postgresql": 1_600, "mysql": 2_000}
    variants = [{"database": database} for database in sizes]

    def static(run: Any) -> None:
        for result in run.results:
            tests = run.paths[result.id] / "tests"
            tests.mkdir(parents=True)
            (tests / "test_a.py").write_text("#" * sizes[result.answers["database"]])

    started: list[str] = []
    monkeypatch.setattr(check._Run, "static", static)
    monkeypatch.setattr(
        check._Run,
        "full_variant",
        lambda run, variant, pool: started.append(variant.answers["database"]),
    )
    plain = CheckOptions(tier="full", jobs=1, work_dir=tmp_path, coverage=False)
    results = run_check(str(REPO), variants, plain)
    assert [result.answers["database"] for result in results] == list(sizes)
    assert started == ["sqlite", "mysql", "postgresql"]

    started.clear()
    covered = CheckOptions(
        tier="full",
        jobs=1,
        work_dir=tmp_path,
        coverage=lambda answers: bool(answers["database"] == "postgresql"),
    )
    run_check(str(REPO), variants, covered)
    assert started == ["postgresql", "sqlite", "mysql"]
