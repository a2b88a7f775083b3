"""`backforge variants`: list the variants of a set, read from copier.yml."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from backforge.cli.common import SetOption, TemplateOption, console, fail
from backforge.errors import UsageError
from backforge.model import CODE_QUESTIONS, VariantError, default_answers, select, variant_ids
from backforge.report import print_unclipped
from backforge.template import resolve_template, template_checkout


def load_variants(
    template: str | None, spec: str, vcs_ref: str | None = None
) -> tuple[str, str | None, list[dict[str, Any]], dict[str, Any]]:
    """The template source, its revision, the variants of `spec` and the default answers."""
    source, ref = resolve_template(template, vcs_ref)
    try:
        with template_checkout(source, ref) as folder:
            return source, ref, select(folder, spec), default_answers(folder)
    except VariantError as exc:
        raise UsageError(str(exc)) from exc


def cell(value: object) -> str:
    if isinstance(value, list):
        return ", ".join(str(item) for item in value) or "-"
    return str(value)


def variants(
    template: TemplateOption = None,
    set_: SetOption = "all",
    as_json: Annotated[
        bool,
        typer.Option("--json", help="Print a JSON list of answers, each with its variant id."),
    ] = False,
) -> None:
    """List the variants of a set (read from copier.yml), each with the id `check` gives it."""
    try:
        _, _, found, defaults = load_variants(template, set_)
    except UsageError as exc:
        raise fail(str(exc)) from exc
    ids = variant_ids(found, defaults)
    if as_json:
        records = [{"id": vid, **answers} for vid, answers in zip(ids, found, strict=True)]
        typer.echo(json.dumps(records, indent=2, sort_keys=True))
        return
    columns = [name for name in (*CODE_QUESTIONS, "ci", "docker", "kubernetes") if name in defaults]
    table = Table(title=escape(f"{len(found)} variants ({set_})"))
    table.add_column("id", style="bold", no_wrap=True)
    for column in columns:
        table.add_column(column)
    for vid, answers in zip(ids, found, strict=True):
        cells = [escape(cell(answers.get(column, ""))) for column in columns]
        table.add_row(escape(vid), *cells)
    print_unclipped(console, table)
