"""The `backforge` command line (Typer + rich).

Exit codes: 0 success; 1 a check failed or an update left conflicts; 2 bad usage or invalid
answers (nothing written).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.panel import Panel
from rich.table import Table

from backforge import __version__
from backforge.bench import bench_command
from backforge.check import Tier, exit_status, run_check
from backforge.render import (
    CommandError,
    UsageError,
    default_template,
    install,
    parse_data,
    render,
    template_checkout,
)
from backforge.report import print_report, progress_bar, write_json, write_junit
from backforge.update import ConflictMode, update_project
from backforge.variants import (
    CODE_QUESTIONS,
    VariantError,
    default_answers,
    parse_shard,
    select,
    shard,
    variant_id,
)

app = typer.Typer(
    name="backforge",
    help="Render, update and prove FastAPI backends from the backforge Copier template.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
errors = Console(stderr=True, soft_wrap=True)

EXIT_FAILED = 1
EXIT_USAGE = 2

TemplateOption = Annotated[
    str | None,
    typer.Option("--template", help="Template path or git URL (default: this checkout)."),
]
VcsRefOption = Annotated[
    str | None, typer.Option("--vcs-ref", help="Template git tag, branch or commit.")
]
DataOption = Annotated[
    list[str] | None,
    typer.Option("-d", "--data", help="An answer as KEY=VALUE; VALUE is YAML. Repeatable."),
]
NoInstallOption = Annotated[
    bool, typer.Option("--no-install", help="Skip `uv lock` and `uv sync`.")
]


def fail(message: str, code: int = EXIT_USAGE) -> typer.Exit:
    errors.print(f"[bold red]error:[/] {message}", highlight=False)
    return typer.Exit(code)


def _version(value: bool) -> None:
    if value:
        console.print(f"backforge {__version__}")
        raise typer.Exit()


@app.callback()
def main_callback(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
) -> None:
    """Render, update and prove FastAPI backends."""


@app.command()
def new(
    dest: Annotated[Path, typer.Argument(help="Folder for the new project (new or empty).")],
    template: TemplateOption = None,
    vcs_ref: VcsRefOption = None,
    data: DataOption = None,
    defaults: Annotated[
        bool, typer.Option("--defaults", help="Use defaults for every question not given with -d.")
    ] = False,
    no_install: NoInstallOption = False,
) -> None:
    """Render a new project, then lock and install it."""
    try:
        answers = parse_data(data or [])
        source = template or default_template()
        render(source, dest, answers, vcs_ref=vcs_ref, defaults=defaults, quiet=True)
    except UsageError as exc:
        raise fail(str(exc)) from exc
    if not no_install:
        with console.status("Locking and installing dependencies (uv lock, uv sync)…"):
            try:
                install(dest)
            except CommandError as exc:
                raise fail(f"the project was rendered but installing it failed: {exc}", 1) from exc
    steps = [f"cd {dest}"]
    if no_install:
        steps.append("uv lock && uv sync")
    steps += [
        "uv run alembic upgrade head",
        "uv run fastapi dev app/main.py   # http://127.0.0.1:8000/docs",
        "uv run pytest",
    ]
    console.print(Panel("\n".join(steps), title="Next steps", expand=False))


@app.command()
def update(
    dest: Annotated[Path, typer.Argument(help="The project to update.")] = Path(),
    vcs_ref: VcsRefOption = None,
    data: DataOption = None,
    conflict: Annotated[
        ConflictMode,
        typer.Option("--conflict", help="inline: conflict markers in the file; rej: *.rej files."),
    ] = "inline",
    no_install: NoInstallOption = False,
) -> None:
    """Pull template changes into a project (a clean git tree) with `copier update`."""
    try:
        with console.status("Updating from the template…"):
            result = update_project(
                dest,
                vcs_ref=vcs_ref,
                data=parse_data(data or []),
                conflict=conflict,
                install=not no_install,
            )
    except UsageError as exc:
        raise fail(str(exc)) from exc
    except CommandError as exc:
        raise fail(str(exc), EXIT_FAILED) from exc
    console.print(f"Updated {dest}: template {result.from_version} → {result.to_version}")
    for found in result.conflicts:
        errors.print(f"[bold red]conflict[/] {found.location}: {found.advice}", highlight=False)
    if result.install_error:
        errors.print(f"[bold red]install failed:[/] {result.install_error}", highlight=False)
    console.print(Panel("\n".join(result.next_steps()), title="Next steps", expand=False))
    if result.exit_code:
        raise typer.Exit(result.exit_code)


SetOption = Annotated[
    str,
    typer.Option(
        "--set",
        help="all | pairwise | presets | preset:NAME | sample:N[:SEED] | answers such as "
        "'database=mysql,auth=jwt'",
    ),
]


def load_variants(
    template: str | None, spec: str, vcs_ref: str | None = None
) -> tuple[str, list[dict[str, Any]], dict[str, Any]]:
    """The template source, the variants of `spec` and the template's default answers."""
    source = template or default_template()
    try:
        with template_checkout(source, vcs_ref) as folder:
            return source, select(folder, spec), default_answers(folder)
    except VariantError as exc:
        raise UsageError(str(exc)) from exc


@app.command()
def variants(
    template: TemplateOption = None,
    set_: SetOption = "all",
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON list of answers.")] = False,
) -> None:
    """List the variants of a set (read from copier.yml)."""
    try:
        _, found, defaults = load_variants(template, set_)
    except UsageError as exc:
        raise fail(str(exc)) from exc
    if as_json:
        typer.echo(json.dumps(found, indent=2, sort_keys=True))
        return
    columns = [name for name in (*CODE_QUESTIONS, "ci", "docker") if name in defaults]
    table = Table(title=f"{len(found)} variants ({set_})")
    table.add_column("id", style="bold")
    for column in columns:
        table.add_column(column)
    for answers in found:
        cells = [_cell(answers.get(column, "")) for column in columns]
        table.add_row(variant_id(answers, defaults), *cells)
    console.print(table)


@app.command()
def check(
    template: TemplateOption = None,
    tier: Annotated[
        Tier, typer.Option("--tier", help="static: render and lint; full: also run everything.")
    ] = "static",
    set_: SetOption = "all",
    jobs: Annotated[int, typer.Option("--jobs", min=1, help="Variants run in parallel.")] = (
        os.cpu_count() or 1
    ),
    shard_: Annotated[
        str | None, typer.Option("--shard", help="I/N: run the I-th of N slices of the set.")
    ] = None,
    json_file: Annotated[
        Path | None, typer.Option("--json", help="Write one JSON record per variant.")
    ] = None,
    junit_file: Annotated[Path | None, typer.Option("--junit", help="Write JUnit XML.")] = None,
    vcs_ref: VcsRefOption = None,
) -> None:
    """Render every variant of a set and prove it works (exit 1 if any fails)."""
    try:
        source, selected, _ = load_variants(template, set_, vcs_ref)
        if shard_:
            index, count = parse_shard(shard_)
            selected = shard(selected, index, count)
    except (UsageError, VariantError) as exc:
        raise fail(str(exc)) from exc
    if not selected:
        console.print("no variants in this shard")
        return
    console.print(f"checking {len(selected)} variants ({set_}, {tier} tier, {jobs} jobs)")
    started = time.perf_counter()
    with progress_bar(console) as on_progress:
        results = run_check(source, selected, tier, jobs, None, on_progress, vcs_ref)
    print_report(results, console, seconds=time.perf_counter() - started)
    if json_file:
        write_json(json_file, results)
    if junit_file:
        write_junit(junit_file, results)
    raise typer.Exit(exit_status(results))


app.command("bench")(bench_command)


def _cell(value: object) -> str:
    if isinstance(value, list):
        return ", ".join(str(item) for item in value) or "-"
    return str(value)


def main() -> None:
    app()
