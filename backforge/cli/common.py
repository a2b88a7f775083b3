"""What every command shares: consoles, options, error printing and exit codes.

User text (answers, paths, sets, tool output) reaches the terminal only through `fail`, `say`
or `rich.markup.escape`, so that `[...]` in it prints as typed and never breaks the markup.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Final

import typer
from rich.console import Console
from rich.markup import escape
from rich.panel import Panel

from backforge.commands import install
from backforge.errors import CommandError

console = Console()
errors = Console(stderr=True, soft_wrap=True)

EXIT_FAILED: Final = 1
EXIT_USAGE: Final = 2

TemplateOption = Annotated[
    str | None,
    typer.Option(
        "--template",
        help="Template path or git URL (default: the template that ships with backforge).",
    ),
]
VcsRefOption = Annotated[
    str | None, typer.Option("--vcs-ref", help="Template git tag, branch or commit.")
]
DataOption = Annotated[
    list[str] | None,
    typer.Option(
        "-d",
        "--data",
        help="An answer as KEY=VALUE; VALUE is YAML (text questions: as typed). Repeatable.",
    ),
]
NoInstallOption = Annotated[
    bool, typer.Option("--no-install", help="Skip `uv lock` and `uv sync`.")
]
TrustOption = Annotated[
    bool,
    typer.Option(
        "--trust",
        help="Run the tasks and migrations of a template other than backforge's own.",
    ),
]
SetOption = Annotated[
    str,
    typer.Option(
        "--set",
        help="all | pairwise | 3wise | presets | preset:NAME | sample:N[:SEED] | answers such as "
        "'database=mysql,auth=jwt'",
    ),
]


def install_and_show_steps(project: Path, no_install: bool, what: str, steps: list[str]) -> None:
    """Unless `no_install`, `uv lock` and `uv sync` the project (exit 1 saying that `what` was
    done but installing failed); then print `steps`, the next steps."""
    if not no_install:
        with console.status("Locking and installing dependencies (uv lock, uv sync)…"):
            try:
                install(project)
            except CommandError as exc:
                raise fail(f"{what} but installing failed: {exc}", EXIT_FAILED) from exc
    console.print(Panel(escape("\n".join(steps)), title="Next steps", expand=False))


def fail(message: str, code: int = EXIT_USAGE) -> typer.Exit:
    """Print `error: message` (escaped) to stderr; the caller raises the returned Exit."""
    errors.print(f"[bold red]error:[/] {escape(message)}", highlight=False)
    return typer.Exit(code)


def warn(label: str, message: str) -> None:
    """Print `label message` to stderr, the label in red, the message escaped."""
    errors.print(f"[bold red]{label}[/] {escape(message)}", highlight=False)


def say(message: str) -> None:
    """Print plain text (escaped) to stdout, one line a line: never broken at the console's width
    (a path or a version cut in two can't be searched for or copied)."""
    console.print(escape(message), highlight=False, soft_wrap=True)
