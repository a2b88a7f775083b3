"""Proving a rendered project works: each step of the static and full tiers.

A step runs one tool in the project and records its status, its time and the tail of its output.
Steps run in order; after the first failure the rest are recorded as skipped, so a report always
names the step that broke.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import yaml

Status = Literal["passed", "failed", "skipped"]

TEXT_SUFFIXES = {
    ".py",
    ".toml",
    ".yml",
    ".yaml",
    ".md",
    ".ini",
    ".cfg",
    ".txt",
    ".mako",
    ".json",
    ".example",
    "",
}
# `${{ ... }}` is GitHub Actions syntax, not leftover Jinja.
LEFTOVER_JINJA = re.compile(r"(?<!\$)\{\{|\{%|%\}|\{#-?\s")
OUTPUT_TAIL_LINES = 40
SKIP_DIRS = {".git", ".venv", ".mypy_cache", ".ruff_cache", ".pytest_cache", "__pycache__"}


@dataclass
class StepResult:
    name: str
    status: Status
    seconds: float = 0.0
    output: str = ""

    @property
    def tail(self) -> str:
        return "\n".join(self.output.strip().splitlines()[-OUTPUT_TAIL_LINES:])


class StepSummary:
    """What a list of steps adds up to (shared by a project's report and a variant's result)."""

    steps: list[StepResult]

    @property
    def ok(self) -> bool:
        return all(step.status != "failed" for step in self.steps)

    @property
    def failed(self) -> StepResult | None:
        return next((step for step in self.steps if step.status == "failed"), None)

    @property
    def seconds(self) -> float:
        return sum(step.seconds for step in self.steps)


@dataclass
class Report(StepSummary):
    steps: list[StepResult] = field(default_factory=list)


class StepFailed(Exception):
    def __init__(self, output: str) -> None:
        super().__init__(output)
        self.output = output


def run_tool(
    command: list[str],
    cwd: Path,
    *,
    env: Mapping[str, str] | None = None,
    timeout: float = 900,
) -> str:
    """Run a command; return its output, or raise StepFailed with it."""
    merged = {**os.environ, **(env or {})}
    merged.pop("VIRTUAL_ENV", None)
    try:
        result = subprocess.run(
            command,
            cwd=cwd,
            env=merged,
            capture_output=True,
            text=True,
            check=False,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired as exc:
        raise StepFailed(f"`{' '.join(command)}` timed out after {timeout:.0f}s") from exc
    except FileNotFoundError as exc:
        raise StepFailed(f"`{command[0]}` is not installed: {exc}") from exc
    output = (result.stdout or "") + (result.stderr or "")
    if result.returncode != 0:
        raise StepFailed(f"$ {' '.join(command)}\n(exit {result.returncode})\n{output}")
    return output


class Pipeline:
    """Run named steps in order; after a failure, record the rest as skipped."""

    def __init__(self, report: Report | None = None) -> None:
        self.report = report or Report()
        self.on_step: Callable[[StepResult], None] | None = None

    def step(self, name: str, action: Callable[[], str | None]) -> bool:
        if not self.report.ok:
            self._record(StepResult(name, "skipped"))
            return False
        started = time.perf_counter()
        try:
            output = action() or ""
        except StepFailed as exc:
            result = StepResult(name, "failed", time.perf_counter() - started, exc.output)
        except Exception as exc:  # a step's own bug must still name the step
            message = f"{type(exc).__name__}: {exc}"
            result = StepResult(name, "failed", time.perf_counter() - started, message)
        else:
            result = StepResult(name, "passed", time.perf_counter() - started, output)
        self._record(result)
        return result.status == "passed"

    def _record(self, result: StepResult) -> None:
        self.report.steps.append(result)
        if self.on_step is not None:
            self.on_step(result)


def project_files(project: Path) -> Iterator[Path]:
    for path in sorted(project.rglob("*")):
        if any(part in SKIP_DIRS for part in path.relative_to(project).parts):
            continue
        if path.is_file():
            yield path


def check_no_jinja(project: Path) -> str:
    """No leftover Jinja in any file name or text file."""
    problems: list[str] = []
    for path in project_files(project):
        relative = path.relative_to(project)
        if "{{" in str(relative) or "{%" in str(relative) or path.suffix == ".jinja":
            problems.append(f"{relative}: Jinja left in the file name")
            continue
        if path.suffix not in TEXT_SUFFIXES or path.name == "uv.lock":
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        for number, line in enumerate(text.splitlines(), start=1):
            if LEFTOVER_JINJA.search(line):
                problems.append(f"{relative}:{number}: {line.strip()}")
    if problems:
        raise StepFailed("leftover Jinja:\n" + "\n".join(problems))
    return ""


def tool(name: str) -> list[str]:
    """A tool installed beside backforge (ruff, hadolint, check-jsonschema)."""
    local = Path(sys.executable).parent / name
    if local.exists():
        return [str(local)]
    if name == "ruff":
        return [sys.executable, "-m", "ruff"]
    return [name]


def uv_env(cache_dir: Path | None) -> dict[str, str]:
    env = {"UV_NO_PROGRESS": "1", "UV_PYTHON_DOWNLOADS": "never"}
    if cache_dir is not None:
        env["UV_CACHE_DIR"] = str(cache_dir)
    return env


def uv_sync(project: Path, cache_dir: Path | None = None) -> str:
    from backforge.render import uv_binary

    uv = uv_binary()
    env = uv_env(cache_dir)
    if not (project / "uv.lock").exists():
        run_tool([uv, "lock", "--quiet"], project, env=env)
    return run_tool([uv, "sync", "--quiet", "--frozen"], project, env=env)


def project_python(project: Path) -> str:
    return str(project / ".venv" / "bin" / "python")


def in_project(project: Path, *args: str, env: Mapping[str, str] | None = None) -> str:
    """Run a module of the project's own environment (after uv sync)."""
    return run_tool([project_python(project), "-m", *args], project, env=env)


def mypy_strict(project: Path) -> str:
    return in_project(project, "mypy", "--no-incremental", env={"MYPY_CACHE_DIR": "/dev/null"})


def hadolint(project: Path) -> str:
    dockerfile = project / "Dockerfile"
    if not dockerfile.exists():
        return "no Dockerfile (docker=false)"
    return run_tool([*tool("hadolint"), "--failure-threshold", "warning", "Dockerfile"], project)


def ci_schema(project: Path) -> str:
    checks = []
    github = project / ".github" / "workflows" / "ci.yml"
    gitlab = project / ".gitlab-ci.yml"
    if github.exists():
        checks.append(("vendor.github-workflows", github))
    if gitlab.exists():
        checks.append(("vendor.gitlab-ci", gitlab))
    output = []
    for schema, path in checks:
        yaml.safe_load(path.read_text(encoding="utf-8"))
        output.append(
            run_tool([*tool("check-jsonschema"), "--builtin-schema", schema, str(path)], project)
        )
    return "\n".join(output) or "no CI workflow (ci=none)"


def migrations_round_trip(project: Path, database_url: str) -> str:
    env = {"DATABASE_URL": database_url, "ENVIRONMENT": "test"}
    output = [
        in_project(project, "alembic", "upgrade", "head", env=env),
        in_project(project, "alembic", "check", env=env),
        in_project(project, "alembic", "downgrade", "base", env=env),
        in_project(project, "alembic", "upgrade", "head", env=env),
        in_project(project, "alembic", "check", env=env),
    ]
    return "\n".join(output)


def project_pytest(
    project: Path, database_url: str, extra_env: Mapping[str, str] | None = None
) -> str:
    env = {"DATABASE_URL": database_url, "COVERAGE_FILE": str(project / ".coverage")}
    env.update(extra_env or {})
    return in_project(project, "pytest", "-q", "-p", "no:cacheprovider", env=env)


def unique_name(prefix: str = "bf") -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


_SUMMARY = re.compile(r"(\d+) passed")


def passed_count(pytest_output: str) -> int:
    found = _SUMMARY.findall(pytest_output)
    return int(found[-1]) if found else 0
