"""`backforge new DEST`: render a project, then lock and install it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Final

import typer

from backforge.answers import check_data, parse_data
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
from backforge.model import PRESETS, VariantError, preset_answers
from backforge.render import render
from backforge.source import require_trust
from backforge.template import resolve_template, template_checkout

SERVE: Final = "uv run fastapi dev app/main.py"
"""How a project is served in development (127.0.0.1:8000), as README.md and copier.yml say."""


def next_steps(dest: Path, *, installed: bool) -> list[str]:
    """What to run after `new`: the same commands as copier.yml's `_message_after_copy`."""
    steps = [f"cd {dest}"]
    if not installed:
        steps.append("uv sync                         # install the app and its dev tools")
    steps += [
        "uv run alembic upgrade heads    # create the database schema",
        f"{SERVE}  # http://127.0.0.1:8000 (docs at /docs)",
        "uv run pytest                   # run the test suite",
    ]
    return steps


def new(
    dest: Annotated[Path, typer.Argument(help="Folder for the new project (new or empty).")],
    template: TemplateOption = None,
    vcs_ref: VcsRefOption = None,
    data: DataOption = None,
    preset: Annotated[
        str | None,
        typer.Option(
            "--preset",
            help=f"Start from a preset's answers ({', '.join(PRESETS)}); -d answers win.",
        ),
    ] = None,
    defaults: Annotated[
        bool, typer.Option("--defaults", help="Use defaults for every question not given with -d.")
    ] = False,
    no_install: NoInstallOption = False,
    trust: TrustOption = False,
) -> None:
    """Render a new project, then lock and install it.

    `backforge questions` lists the questions, their values and defaults (read from copier.yml).
    """
    try:
        given = parse_data(data or [])
        if template:
            require_trust(template, trust)
        source, ref = resolve_template(template, vcs_ref)
        with template_checkout(source, ref, at_ref=True) as folder:
            answers = preset_answers(folder, preset) if preset else {}
            answers.update(check_data(folder, given, context=answers))
        render(source, dest, answers, vcs_ref=ref, defaults=defaults, quiet=True)
    except (UsageError, VariantError) as exc:
        raise fail(str(exc)) from exc
    install_and_show_steps(
        dest, no_install, "the project was rendered", next_steps(dest, installed=not no_install)
    )
