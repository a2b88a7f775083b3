"""Which template a command reads and renders, at which revision, and a local folder holding it.

`resolve_template` is the one rule every command follows (new, questions, variants, check,
bench): `--template` when given, else the template that ships with backforge (the checkout it
runs from, or the wheel's template cache at the installed version), at `--vcs-ref` when given.
`update` is the exception: it follows the source the project's answers file records.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from pathlib import Path

from backforge.commands import run
from backforge.errors import CommandError, UsageError
from backforge.source import default_template

__all__ = ["effective_ref", "resolve_template", "template_checkout"]


def resolve_template(template: str | None, vcs_ref: str | None) -> tuple[str, str | None]:
    """The template source and revision a command uses: `template` at `vcs_ref`, else
    backforge's own template at `vcs_ref` or at the revision that ships with it."""
    if template:
        return template, vcs_ref
    source, bundled_ref = default_template()
    return source, vcs_ref or bundled_ref


def effective_ref(template: str, vcs_ref: str | None) -> str | None:
    """The revision to render: `vcs_ref`, else `HEAD` for a local git repository (its working
    tree, uncommitted changes included, rather than its latest tag), else Copier's default."""
    if vcs_ref is not None:
        return vcs_ref
    if (Path(template).expanduser() / ".git").exists():
        return "HEAD"
    return None


@contextlib.contextmanager
def template_checkout(
    source: str, vcs_ref: str | None = None, *, at_ref: bool = False
) -> Iterator[Path]:
    """A local folder holding the template at `source`: the folder itself, or a clone of a git
    URL (at `vcs_ref` when given) that is removed on exit. With `at_ref`, a local git repository
    is cloned too when `vcs_ref` is given, so that the folder holds that revision; `HEAD` is the
    folder itself, as Copier renders a local `HEAD` with its uncommitted changes."""
    path = Path(source).expanduser()
    cloned_ref = at_ref and vcs_ref not in (None, "HEAD") and (path / ".git").exists()
    if path.is_dir() and not cloned_ref:
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
