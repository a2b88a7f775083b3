"""The `backforge` command line (Typer + rich): one module per command.

Exit codes: 0 success; 1 a check failed or an update left conflicts; 2 bad usage or invalid
answers (nothing written).
"""

from __future__ import annotations

from typing import Annotated

import typer

from backforge import __version__
from backforge.cli import add, bench, check, new, questions, resources, update, variants
from backforge.cli.common import console
from backforge.source import describe_template

app = typer.Typer(
    name="backforge",
    help="Render, update and prove FastAPI backends from the backforge Copier template.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        console.print(
            f"backforge {__version__}\n{describe_template()}", highlight=False, soft_wrap=True
        )
        raise typer.Exit()


@app.callback()
def main_callback(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=_version,
            is_eager=True,
            help="Show the version and the template's.",
        ),
    ] = False,
) -> None:
    """Render, update and prove FastAPI backends."""


app.command("new")(new.new)
app.add_typer(add.app, name="add")
app.command("resources")(resources.resources)
app.command("update")(update.update)
app.command("questions")(questions.questions)
app.command("variants")(variants.variants)
app.command("check")(check.check)
app.command("bench")(bench.bench)


def main() -> None:
    app()


__all__ = ["app", "main"]
