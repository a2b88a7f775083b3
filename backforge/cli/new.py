"""`backforge new DEST`: render a project, then lock and install it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from backforge.cli.common import (
    DataOption,
    NoInstallOption,
    TemplateOption,
    TrustOption,
    VcsRefOption,
    fail,
    install_and_show_steps,
)
from backforge.errors import UsageError
from backforge.render import parse_data, render
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
    install_and_show_steps(
        dest,
        no_install,
        "the project was rendered",
        [
            "uv run alembic upgrade heads",
            "uv run fastapi dev app/main.py   # http://127.0.0.1:8000/docs",
            "uv run pytest",
        ],
    )
