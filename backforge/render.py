"""Rendering: answers from `-d KEY=VALUE`, the template source, and `copier.run_copy`."""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import warnings
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import copier
import yaml

from backforge.errors import CommandError, UsageError

__all__ = [
    "CommandError",
    "UsageError",
    "captured_output",
    "commit_lockfile",
    "effective_ref",
    "git_commit",
    "install",
    "parse_data",
    "render",
    "run",
    "template_checkout",
    "uv_binary",
]


def parse_data(items: Iterable[str]) -> dict[str, Any]:
    """Parse `KEY=VALUE` pairs; values are YAML, as in Copier (`-d 'features=[cache, jobs]'`)."""
    data: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise UsageError(f"-d expects KEY=VALUE, got {item!r}")
        try:
            data[key] = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError as exc:
            raise UsageError(f"-d {key}: the value is not valid YAML ({exc})") from exc
    return data


def effective_ref(template: str, vcs_ref: str | None) -> str | None:
    """The revision to render: `vcs_ref`, else `HEAD` for a local git repository (its working
    tree, uncommitted changes included, rather than its latest tag), else Copier's default."""
    if vcs_ref is not None:
        return vcs_ref
    if (Path(template).expanduser() / ".git").exists():
        return "HEAD"
    return None


def _is_empty_dir(path: Path) -> bool:
    return path.is_dir() and not any(path.iterdir())


def render(
    template: str,
    dest: Path,
    data: Mapping[str, Any],
    *,
    vcs_ref: str | None = None,
    defaults: bool = True,
    quiet: bool = False,
    skip_tasks: bool = False,
) -> None:
    """Render a new project into `dest` (which must not exist or be empty).

    Invalid answers raise UsageError naming the question and the rule; nothing is left behind.
    """
    if dest.exists() and not _is_empty_dir(dest):
        raise UsageError(f"{dest} exists and is not empty; choose a new folder")
    created = not dest.exists()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            copier.run_copy(
                template,
                str(dest),
                data=dict(data),
                defaults=defaults,
                vcs_ref=vcs_ref,
                unsafe=True,
                quiet=quiet,
                skip_tasks=skip_tasks,
            )
    except (ValueError, copier.errors.CopierError) as exc:
        _discard(dest, created)
        raise UsageError(str(exc)) from exc
    except BaseException:
        _discard(dest, created)
        raise


def _discard(dest: Path, created: bool) -> None:
    if created:
        shutil.rmtree(dest, ignore_errors=True)
    elif dest.is_dir():
        for child in dest.iterdir():
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child, ignore_errors=True)
            else:
                child.unlink(missing_ok=True)


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


@contextlib.contextmanager
def template_checkout(source: str, vcs_ref: str | None = None) -> Iterator[Path]:
    """A local folder holding the template at `source`: the folder itself, or a clone of a git
    URL (at `vcs_ref` when given) that is removed on exit."""
    path = Path(source).expanduser()
    if path.is_dir():
        if not (path / "copier.yml").is_file() and not (path / "copier.yaml").is_file():
            raise UsageError(f"{path} is not a Copier template (no copier.yml)")
        yield path.resolve()
        return
    with tempfile.TemporaryDirectory(prefix="backforge-template-") as scratch:
        clone = Path(scratch) / "template"
        try:
            run(["git", "clone", "--quiet", source, str(clone)], Path.cwd())
            if vcs_ref:
                run(["git", "checkout", "--quiet", vcs_ref], clone)
        except CommandError as exc:
            raise UsageError(f"cannot read the template {source!r}: {exc}") from exc
        yield clone


_CAPTURE_LOCK = threading.Lock()


@contextlib.contextmanager
def captured_output() -> Iterator[io.StringIO]:
    """Capture everything written to stdout/stderr, by Python and by child processes alike.

    Copier prints notices and the template's tasks print to the inherited descriptors, which
    `check` and `bench` keep for their progress display. The text is available in the yielded
    buffer afterwards. One capture at a time (the descriptors are process-wide).
    """
    buffer = io.StringIO()
    with _CAPTURE_LOCK, tempfile.TemporaryFile() as sink:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        saved = [os.dup(1), os.dup(2)]
        os.dup2(sink.fileno(), 1)
        os.dup2(sink.fileno(), 2)
        try:
            with contextlib.redirect_stdout(buffer), contextlib.redirect_stderr(buffer):
                yield buffer
        finally:
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)
            sink.seek(0)
            buffer.write(sink.read().decode("utf-8", errors="replace"))
