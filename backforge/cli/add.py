"""`backforge add resource NAME --field SPEC ...`: add a resource to a project (see
backforge.resources.add)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from backforge.cli.common import (
    EXIT_FAILED,
    NoInstallOption,
    console,
    fail,
    install_and_show_steps,
    say,
)
from backforge.cli.new import SERVE
from backforge.errors import CommandError, UsageError
from backforge.resources.add import SCOPES, Names, plan_resource, render_resource

app = typer.Typer(
    name="add",
    help="Add to a project: `backforge add resource NAME --field SPEC ...`.",
    no_args_is_help=True,
)

ProjectOption = Annotated[
    Path,
    typer.Option(
        "--project", "-C", help="The project (default: the current folder).", show_default=False
    ),
]


@app.command("resource")
def resource(
    name: Annotated[str, typer.Argument(help="Singular snake_case name: invoice, line_item.")],
    field: Annotated[
        list[str] | None,
        typer.Option(
            "--field",
            "-f",
            help="A field as name:type(args)?=default. Types: str(n), text, int, decimal(p,s), "
            "bool, date, datetime, uuid, enum(a|b), ref(resource|user); ? = optional. Repeatable.",
        ),
    ] = None,
    search: Annotated[
        list[str] | None,
        typer.Option("--search", help="A str/text field that `q` searches. Repeatable."),
    ] = None,
    sort: Annotated[
        list[str] | None,
        typer.Option("--sort", help="A field the list can be sorted by. Repeatable."),
    ] = None,
    scope: Annotated[
        str | None,
        typer.Option(
            "--scope",
            help=f"{' | '.join(SCOPES)} (default: organization with multi_tenant, owner with "
            "auth=jwt, global with auth=none).",
            show_default=False,
        ),
    ] = None,
    plural: Annotated[
        str | None, typer.Option("--plural", help="Default: NAME + s/es/ies.")
    ] = None,
    class_name: Annotated[
        str | None, typer.Option("--class-name", help="Default: NAME in CamelCase.")
    ] = None,
    table: Annotated[str | None, typer.Option("--table", help="Default: the plural.")] = None,
    url: Annotated[
        str | None, typer.Option("--url", help="Path under /api/v1 (default: plural, - for _).")
    ] = None,
    tag: Annotated[
        str | None, typer.Option("--tag", help="OpenAPI tag (default: the URL).")
    ] = None,
    no_install: NoInstallOption = False,
    project: ProjectOption = Path(),
) -> None:
    """Render a resource (model, schemas, repository, service, router, migration, tests) into
    a project with a clean git tree, commit it, then lock and install."""
    try:
        plan = plan_resource(
            project,
            name,
            field or [],
            search=search or [],
            sort=sort or [],
            scope=scope,
            names=Names(plural=plural, class_name=class_name, table=table, url=url, tag=tag),
        )
        with console.status(f"Rendering resource {name}…"):
            added = render_resource(plan)
    except UsageError as exc:
        raise fail(str(exc)) from exc
    except CommandError as exc:
        raise fail(str(exc), EXIT_FAILED) from exc
    say(f"Added resource {name} to {plan.project} (committed): {', '.join(added)}")
    install_and_show_steps(
        plan.project,
        no_install,
        "the resource was added",
        [
            f"cd {plan.project}",
            *(["uv lock && uv sync"] if no_install else []),
            "uv run alembic upgrade heads",
            f"{SERVE}   # /api/v1/{plan.answers['url']}",
            f"uv run pytest tests/test_{plan.answers['plural']}.py",
        ],
    )
