"""Running commands backforge needs: any command (its output kept for the error), uv, and
locking and installing a rendered project (the lockfile committed)."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterable, Mapping
from pathlib import Path

from backforge.errors import CommandError

__all__ = ["commit_lockfile", "git_commit", "install", "run", "uv_binary"]


def uv_binary() -> str:
    found = shutil.which("uv")
    if found:
        return found
    try:
        from uv import find_uv_bin
    except ImportError as exc:  # pragma: no cover - uv is a dependency of backforge
        raise RuntimeError("uv is not installed; pip install uv") from exc
    return str(find_uv_bin())


def run(command: list[str], cwd: Path, *, env: Mapping[str, str] | None = None) -> str:
    """Run a command; raise CommandError with its output when it fails."""
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False, env=env)
    if result.returncode != 0:
        raise CommandError(command, result.returncode, result.stdout + result.stderr)
    return result.stdout


def install(project: Path) -> None:
    """Lock and sync the rendered project; commit the lockfile when the project is a git repo."""
    uv = uv_binary()
    run([uv, "lock", "--quiet"], project)
    run([uv, "sync", "--quiet"], project)
    commit_lockfile(project)


def commit_lockfile(project: Path) -> bool:
    """Commit `uv.lock` when it changed; False when there was nothing to commit (or no git)."""
    status = subprocess.run(
        ["git", "status", "--porcelain", "--", "uv.lock"],
        cwd=project,
        capture_output=True,
        text=True,
        check=False,
    )
    if status.returncode != 0 or not status.stdout.strip():
        return False
    git_commit(project, "Lock dependencies", ["uv.lock"])
    return True


def git_commit(project: Path, message: str, paths: Iterable[str] = (".",)) -> None:
    """`git add` `paths` and commit them (hooks skipped), as the user when git knows who that
    is, else as backforge."""
    identity: list[str] = []
    email = subprocess.run(
        ["git", "config", "user.email"], cwd=project, capture_output=True, check=False
    )
    if email.returncode != 0:
        identity = ["-c", "user.name=backforge", "-c", "user.email=backforge@localhost"]
    run(["git", "add", "--all", "--", *paths], project)
    run(["git", *identity, "commit", "--quiet", "--no-verify", "-m", message], project)
