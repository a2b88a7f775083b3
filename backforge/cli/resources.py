"""`backforge resources [DEST]`: the project's resources and their template versions."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from backforge.cli.common import fail, say
from backforge.errors import UsageError
from backforge.resources.project import project_answers, resource_answers
from backforge.resources.spec import summarize
from backforge.resources.template import is_resource_cache


def resources(
    dest: Annotated[
        Path, typer.Argument(help="The project (default: the current folder).")
    ] = Path(),
) -> None:
    """List the project's resources (each .copier-answers.resource-*.yml)."""
    try:
        project_answers(dest)
        found = resource_answers(dest)
    except UsageError as exc:
        raise fail(str(exc)) from exc
    if not found:
        say(f"{dest} has no resources yet: backforge add resource NAME --field SPEC ...")
        return
    for answers_file, answers in found.items():
        source = answers.get("_src_path")
        origin = "backforge's resource template" if is_resource_cache(source) else str(source)
        fields = answers.get("fields")
        listed = ", ".join(summarize(f) for f in fields) if isinstance(fields, list) else "?"
        say(
            f"{answers.get('resource', answers_file)}: /api/v1/{answers.get('url', '?')}, scope "
            f"{answers.get('scope', '?')}, template {answers.get('_commit', '?')} ({origin}, "
            f"{answers_file})\n  fields: {listed}"
        )
