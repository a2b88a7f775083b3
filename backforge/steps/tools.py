"""Running tools in a rendered project: uv, the project's own Python, tools installed beside
backforge (ruff, hadolint, check-jsonschema)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from collections.abc import Mapping
from pathlib import Path

from backforge.commands import uv_binary
from backforge.steps.results import StepFailed

NOT_INHERITED = frozenset({"VIRTUAL_ENV", "PYTHONDONTWRITEBYTECODE"})
"""Left out of a tool's environment. VIRTUAL_ENV: backforge's own, not the project's.
PYTHONDONTWRITEBYTECODE (set on some machines, this workplace's among them): a project's suite
starts many Python processes over the same packages (uvicorn instances, job workers, alembic),
and without bytecode written by the first each compiled every module again from source: half of
a rendered suite's CPU (129 against 66 CPU-seconds)."""


def run_tool(
    command: list[str],
    cwd: Path,
    *,
    env: Mapping[str, str] | None = None,
    timeout: float = 900,
) -> str:
    """Run a command; return its output, or raise StepFailed with it.

    The command inherits this process's environment but for `NOT_INHERITED`; `env` may still
    set those."""
    merged = {k: v for k, v in os.environ.items() if k not in NOT_INHERITED}
    merged.update(env or {})
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


def unique_name(prefix: str = "bf") -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


_SUMMARY = re.compile(r"(\d+) passed")


def passed_count(pytest_output: str) -> int:
    found = _SUMMARY.findall(pytest_output)
    return int(found[-1]) if found else 0
