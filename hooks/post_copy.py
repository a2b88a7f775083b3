"""Copy-time task (offline, copy only): write `.env` with fresh secrets and start a git repository.

Copier runs this in the destination folder after rendering a new project. It never runs on update:
`.env` is the user's, and the repository already exists then.
"""

from __future__ import annotations

import re
import secrets
import subprocess
import sys
from pathlib import Path

ENV_EXAMPLE = ".env.example"
SECRET_PATTERN = re.compile(r"^(SECRET_KEY)=.*$", re.MULTILINE)
EMPTY_PASSWORD_PATTERN = re.compile(r"^(FIRST_SUPERUSER_PASSWORD)=$", re.MULTILINE)


def write_env(project: Path) -> bool:
    """Write `.env` from `.env.example` with fresh secrets; keep an existing `.env`.

    SECRET_KEY always gets a new random value; an empty FIRST_SUPERUSER_PASSWORD gets one too.
    """
    env_file = project / ".env"
    if env_file.exists():
        return False
    example = project / ENV_EXAMPLE
    text = example.read_text(encoding="utf-8") if example.exists() else ""
    secret = secrets.token_urlsafe(48)
    if SECRET_PATTERN.search(text):
        text = SECRET_PATTERN.sub(lambda m: f"{m.group(1)}={secret}", text)
    else:
        text += f"SECRET_KEY={secret}\n"
    text = EMPTY_PASSWORD_PATTERN.sub(lambda m: f"{m.group(1)}={secrets.token_urlsafe(18)}", text)
    env_file.write_text(text, encoding="utf-8")
    env_file.chmod(0o600)
    return True


def _git(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], cwd=project, capture_output=True, text=True, check=False)


def init_git(project: Path) -> bool:
    """`git init` and a first commit, unless the project already lives in a git work tree."""
    inside = _git(project, "rev-parse", "--is-inside-work-tree")
    if inside.returncode == 0 and inside.stdout.strip() == "true":
        return False
    if _git(project, "init", "--quiet", "--initial-branch=main").returncode != 0:
        return False
    _git(project, "add", "--all")
    identity: list[str] = []
    if _git(project, "config", "user.email").returncode != 0:
        identity = ["-c", "user.name=backforge", "-c", "user.email=backforge@localhost"]
    message = "Initial commit from backforge"
    commit = _git(project, *identity, "commit", "--quiet", "--no-verify", "-m", message)
    return commit.returncode == 0


def main(project: Path) -> int:
    wrote_env = write_env(project)
    created_repo = init_git(project)
    if wrote_env:
        print("backforge: wrote .env with fresh secrets (git-ignored)")
    if created_repo:
        print("backforge: initialised a git repository with a first commit")
    return 0


if __name__ == "__main__":
    sys.exit(main(Path.cwd()))
