"""`backforge new DEST`: render a project, then lock and install it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.panel import Panel

from backforge.cli.common import (
    EXIT_FAILED,
    DataOption,
    NoInstallOption,
    TemplateOption,
    TrustOption,
    VcsRefOption,
    console,
    fail,
)
from backforge.errors import CommandError, UsageError
from backforge.render import install, parse_data, render
from backforge.source import default_template, require_trust


def new(
    dest: Annotated[Path, typer.Argument(help="Folder for the new project (new or empty).")],
    template: TemplateOption = None,
    vcs_ref: VcsRefOption = None,
    data: DataOption = None,
    defaults: Annotated[
        bool, typer.Option("--defaults", help="Use defaults for every question not given with -d.")
    ] = False,
    no_install: NoInstallOption = False,
    trust: TrustOption = False,
) -> None:
    """Render a new project, then lock and install it."""
    try:
        answers = parse_data(data or [])
        if template:
            require_trust(template, trust)
            source, ref = template, vcs_ref
        else:
            source, bundled_ref = default_template()
            ref = vcs_ref or bundled_ref
        render(source, dest, answers, vcs_ref=ref, defaults=defaults, quiet=True)
    except UsageError as exc:
        raise fail(str(exc)) from exc
    if not no_install:
        with console.status("Locking and installing dependencies (uv lock, uv sync)…"):
            try:
                install(dest)
            except CommandError as exc:
                raise fail(
                    f"the project was rendered but installing it failed: {exc}", EXIT_FAILED
                ) from exc
    steps = [f"cd {dest}"]
    if no_install:
        steps.append("uv lock && uv sync")
    steps += [
        "uv run alembic upgrade heads",
        "uv run fastapi dev app/main.py   # http://127.0.0.1:8000/docs",
        "uv run pytest",
    ]
    console.print(Panel(escape("\n".join(steps)), title="Next steps", expand=False))
