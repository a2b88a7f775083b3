"""The full tier's `add-resources` step (`backforge check --with-resources`): two resources added
to a variant, as `backforge add resource` adds them, before its other checks run.

`customer` uses every field type (and, with auth=jwt, a reference to users); `invoice` refers
to `customer`. Their scope is the project's default (global with auth=none, owner with auth=jwt,
organization with multi_tenant), so the variants of a set prove each scope. The steps after it
(ruff, compile, OpenAPI, mypy --strict, the migrations round trip with `alembic check`, the
project's suite with the resources' own tests and the schemathesis test) then cover them too.

The resource template is the checked template's own `resource/` folder (at the checked ref),
committed once per run into backforge's resource cache (`backforge.resources.template`).
"""

from __future__ import annotations

import shlex
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from backforge.errors import CommandError, UsageError
from backforge.resources.add import plan_resource, render_resource
from backforge.resources.template import RESOURCE, resource_template
from backforge.steps.results import StepFailed
from backforge.template import template_checkout


@dataclass(frozen=True)
class ExampleResource:
    """One resource as the arguments of `backforge add resource`."""

    name: str
    fields: tuple[str, ...]
    search: tuple[str, ...] = ()
    sort: tuple[str, ...] = ()

    def command(self) -> str:
        """The `backforge add resource` command that adds it (to reproduce a failure)."""
        words = ["backforge", "add", "resource", self.name]
        options = (("--field", self.fields), ("--search", self.search), ("--sort", self.sort))
        for option, values in options:
            words += [part for value in values for part in (option, value)]
        return shlex.join([*words, "--no-install"])


EVERY_FIELD_TYPE: Final = (
    "title:str(120)",
    "notes:text?",
    "count:int=0",
    "amount:decimal(12,2)",
    "paid:bool=false",
    "due:date?",
    "at:datetime",
    "ext:uuid?",
    "status:enum(draft|sent|paid)=draft",
)
USER_REF: Final = "contact:ref(user)?"


def example_resources(answers: Mapping[str, Any]) -> list[ExampleResource]:
    """`customer` (every field type; a user reference with auth=jwt) and `invoice` (a
    reference to a customer), for a variant's answers."""
    users = (USER_REF,) if answers.get("auth") == "jwt" else ()
    return [
        ExampleResource(
            "customer",
            (*EVERY_FIELD_TYPE, *users),
            search=("title", "notes"),
            sort=("title", "amount", "due", "status"),
        ),
        ExampleResource(
            "invoice",
            ("number:str(40)", "customer:ref(customer)"),
            search=("number",),
            sort=("number",),
        ),
    ]


def cached_resource_template(template: str, vcs_ref: str | None) -> tuple[str, str]:
    """The checked template's `resource/` folder (at `vcs_ref`) committed into the resource
    cache: the repository and tag to render from. StepFailed when it has none."""
    try:
        with template_checkout(template, vcs_ref, at_ref=True) as folder:
            if not (folder / RESOURCE / "copier.yml").is_file():
                raise StepFailed(
                    f"the template {template} has no resource template ({RESOURCE}/copier.yml), "
                    "so --with-resources cannot add resources"
                )
            return resource_template(folder / RESOURCE)
    except UsageError as exc:
        raise StepFailed(f"cannot read the resource template of {template}: {exc}") from exc


def add_resources(
    project: Path, resources: Sequence[ExampleResource], template: tuple[str, str]
) -> str:
    """Add each resource to `project` (a committed git tree) as `backforge add resource
    --no-install` does; StepFailed names the resource that failed and its command."""
    lines: list[str] = []
    for resource in resources:
        lines.append(f"$ {resource.command()}")
        try:
            plan = plan_resource(
                project,
                resource.name,
                resource.fields,
                search=resource.search,
                sort=resource.sort,
            )
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                added = render_resource(plan, *template)
        except (UsageError, CommandError) as exc:
            lines.append(f"resource {resource.name!r} failed: {exc}")
            raise StepFailed("\n".join(lines)) from exc
        except Exception as exc:  # the template's own error (Jinja, YAML): name the resource
            lines.append(f"resource {resource.name!r} failed: {type(exc).__name__}: {exc}")
            raise StepFailed("\n".join(lines)) from exc
        lines.append(f"added {', '.join(added)}")
    return "\n".join(lines)
