"""`backforge update [DEST]`: pull template changes into a project (see backforge.update)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from rich.markup import escape
from rich.panel import Panel

from backforge.answers import parse_data
from backforge.cli.common import (
    EXIT_FAILED,
    DataOption,
    NoInstallOption,
    TrustOption,
    VcsRefOption,
    console,
    fail,
    say,
    warn,
)
from backforge.errors import CommandError, UsageError
from backforge.resources.project import resource_answers
from backforge.resources.template import update_ref
from backforge.source import (
    cache_bundled_template,
    is_checkout,
    require_trust,
    running_from_checkout,
    template_cache,
)
from backforge.update import ANSWERS_FILE, ConflictMode, update_project


def _recorded_source(dest: Path) -> str | None:
    """The template source the project's answers file records, if it can be read."""
    try:
        answers: Any = yaml.safe_load((dest / ANSWERS_FILE).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return None
    source = answers.get("_src_path") if isinstance(answers, dict) else None
    return str(source) if source else None


def _is_cache(source: str) -> bool:
    return Path(source).expanduser().absolute() == template_cache().absolute()


def _source_ref(dest: Path, vcs_ref: str | None, trust: bool) -> str | None:
    """Refuse a foreign recorded source without --trust; the revision to update to.

    A project rendered by an installed backforge records the template cache: the installed
    template is added to it (once per version and content) and is the default target. A
    project rendered from the checkout backforge runs from updates to its `HEAD` (not to the
    latest release tag, Copier's default)."""
    source = _recorded_source(dest)
    if source is None:
        return vcs_ref  # update_project explains what is missing
    if is_checkout(source):
        return vcs_ref or "HEAD"
    if _is_cache(source):
        if running_from_checkout():
            return vcs_ref
        _, tag = cache_bundled_template()
        return vcs_ref or tag
    require_trust(source, trust)
    return vcs_ref


def update(
    dest: Annotated[Path, typer.Argument(help="The project to update.")] = Path(),
    vcs_ref: VcsRefOption = None,
    data: DataOption = None,
    conflict: Annotated[
        ConflictMode,
        typer.Option("--conflict", help="inline: conflict markers in the file; rej: *.rej files."),
    ] = "inline",
    no_install: NoInstallOption = False,
    trust: TrustOption = False,
) -> None:
    """Pull template changes into a project (a clean git tree) with `copier update`."""
    try:
        answers = parse_data(data or [])
        ref = _source_ref(dest, vcs_ref, trust)
        resources = {
            answers_file: update_ref(resource, trust)
            for answers_file, resource in resource_answers(dest).items()
        }
        with console.status("Updating from the template…"):
            result = update_project(
                dest,
                vcs_ref=ref,
                data=answers,
                conflict=conflict,
                install=not no_install,
                resources=resources,
            )
    except UsageError as exc:
        raise fail(str(exc)) from exc
    except CommandError as exc:
        raise fail(str(exc), EXIT_FAILED) from exc
    if result.up_to_date:
        say(f"{dest} is already at template {result.to_version}: nothing changed or to commit")
        return
    for done in result.templates:
        what = "template" if done.template == "base" else done.template
        say(f"Updated {dest}: {what} {done.from_version} → {done.to_version}")
    for found in result.conflicts:
        warn(f"conflict ({found.template})", f"{found.location}: {found.advice}")
    for pending in result.pending:
        warn("not updated:", f"{pending} (an earlier template left conflicts)")
    if result.install_error:
        warn("install failed:", result.install_error)
    console.print(Panel(escape("\n".join(result.next_steps())), title="Next steps", expand=False))
    if result.exit_code:
        raise typer.Exit(result.exit_code)
