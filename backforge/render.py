"""Rendering a new project: answers → a tree with `copier.run_copy`, nothing left behind when it
fails."""

from __future__ import annotations

import shutil
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import copier

from backforge.errors import UsageError

__all__ = ["render"]


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
