"""`backforge add resource`: check everything, then render the resource template once.

Every rule is checked before anything is written (UsageError, exit 2): the project (a backforge
project, a clean git tree), the names (snake_case, no Python keyword, no SQL reserved word, no
collision with a resource, model, table, route, revision or file the project has), the fields
(see `spec.parse_field`), `--search`/`--sort`, refs, the scope, and, once rendered, that
everything the resource imports from `app` exists (a project older than the resource template
is told to run `backforge update` first). The resource's first Alembic
revision revises the project's heads, read statically from `migrations/versions`. The template
renders into a staging folder first and its files are copied in only when none exists; the result
is committed ("Add resource NAME") so that the next resource can be added to a clean tree.
"""

from __future__ import annotations

import shutil
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any, Final

import copier

from backforge.commands import git_commit
from backforge.errors import UsageError
from backforge.resources.naming import (
    IDENTIFIER_LIMIT,
    check_class_name,
    check_snake,
    check_tag,
    check_url,
    class_name_of,
    plural_of,
    url_of,
)
from backforge.resources.project import (
    PROJECT_ANSWERS,
    TakenNames,
    alembic_heads,
    missing_imports,
    project_answers,
    project_context,
    resource_answers,
    resource_answers_file,
    taken_names,
)
from backforge.resources.spec import SEARCHABLE, SORTABLE, Field, parse_field
from backforge.resources.template import resource_template
from backforge.update import check_clean, check_repository, restore

SCOPES: Final = ("owner", "organization", "global")
ALWAYS_SORTABLE: Final = "created_at"


@dataclass(frozen=True)
class Names:
    """Overrides of the derived names (None: derive)."""

    plural: str | None = None
    class_name: str | None = None
    table: str | None = None
    url: str | None = None
    tag: str | None = None


@dataclass(frozen=True)
class ResourcePlan:
    """A checked resource: its answers for the resource template, and where it goes."""

    project: Path
    answers: dict[str, Any]
    fields: tuple[Field, ...]

    @property
    def name(self) -> str:
        return str(self.answers["resource"])

    @property
    def answers_file(self) -> str:
        return resource_answers_file(self.name)

    @property
    def files(self) -> list[str]:
        """The files the contract says one resource renders (feature files aside)."""
        name, plural, table = self.name, self.answers["plural"], self.answers["table"]
        return [
            f"app/models/{name}.py",
            f"app/schemas/{name}.py",
            f"app/repositories/{name}.py",
            f"app/services/{name}.py",
            f"app/dependencies/{name}.py",
            f"app/routers/{plural}.py",
            *(f"migrations/versions/{revision}_{table}.py" for revision in self.revisions),
            f"tests/test_{plural}.py",
            self.answers_file,
        ]

    @property
    def revisions(self) -> list[str]:
        """The resource's revision ids for its scope: the table, then the owner (scope owner or
        organization), then the organization (scope organization)."""
        scope = self.answers.get("scope")
        suffixes = ["0001", *(["owner"] if scope in ("owner", "organization") else [])]
        suffixes += ["tenancy"] if scope == "organization" else []
        return [f"{self.name}_{suffix}" for suffix in suffixes]


def _truthy(value: object) -> bool:
    return value is True or (isinstance(value, str) and value.lower() in {"true", "yes", "1"})


def default_scope(project: Mapping[str, Any]) -> str:
    """organization with multi_tenant, owner with auth=jwt, global with auth=none."""
    if project.get("auth") != "jwt":
        return "global"
    return "organization" if _truthy(project.get("multi_tenant")) else "owner"


def _check_scope(scope: str, project: Mapping[str, Any]) -> None:
    if scope not in SCOPES:
        raise UsageError(f"--scope {scope!r} is not one of {', '.join(SCOPES)}")
    if scope == "organization" and not _truthy(project.get("multi_tenant")):
        raise UsageError(
            "--scope organization needs a multi-tenant project (multi_tenant: true); this one "
            "has no organizations (switch it on with `backforge update -d multi_tenant=true`)"
        )
    if scope == "owner" and project.get("auth") != "jwt":
        raise UsageError(
            "--scope owner needs auth=jwt (rows belong to users); this project has auth="
            f"{project.get('auth')}: use --scope global"
        )


def _names(name: str, names: Names) -> dict[str, str]:
    check_snake("NAME", name)
    plural = plural_of(name) if names.plural is None else names.plural
    check_snake("--plural", plural)
    if plural == name:
        raise UsageError(
            f"--plural {plural!r} must differ from NAME (the code names one row and a list apart)"
        )
    class_name = class_name_of(name) if names.class_name is None else names.class_name
    check_class_name(class_name)
    table = plural if names.table is None else names.table
    check_snake("--table", table)
    url = url_of(plural) if names.url is None else names.url
    check_url(url)
    tag = url if names.tag is None else names.tag
    check_tag(tag)
    return {
        "resource": name,
        "plural": plural,
        "class_name": class_name,
        "table": table,
        "url": url,
        "tag": tag,
    }


def _check_fields(
    fields: Sequence[Field],
    table: str,
    resource: str,
    project: Mapping[str, Any],
    resources: Mapping[str, Mapping[str, Any]],
) -> None:
    if not fields:
        raise UsageError("a resource needs at least one --field (e.g. --field title:str(120))")
    columns: dict[str, str] = {}
    known = {str(answers.get("resource")): answers.get("table") for answers in resources.values()}
    for spec in fields:
        for column in dict.fromkeys((spec.name, spec.column)):
            if column in columns:
                raise UsageError(
                    f"field {spec.name!r}: its column {column!r} is already used by field "
                    f"{columns[column]!r}; field names must be distinct"
                )
            columns[column] = spec.name
        index = f"ix_{table}_{spec.column}"
        if len(index) > IDENTIFIER_LIMIT:
            raise UsageError(
                f"field {spec.name!r}: the index name {index!r} would be {len(index)} characters; "
                f"PostgreSQL allows {IDENTIFIER_LIMIT}: shorten the field or the table name"
            )
        if spec.type != "ref":
            continue
        target = str(spec.target)
        if target == "user":
            if project.get("auth") != "jwt":
                raise UsageError(
                    f"field {spec.name!r}: ref(user) needs auth=jwt; this project has no users"
                )
            target_table = "users"
        elif target == resource:
            raise UsageError(f"field {spec.name!r}: a resource cannot reference itself")
        elif target in known:
            target_table = str(known[target])
        else:
            have = ", ".join(sorted(known)) or "none"
            raise UsageError(
                f"field {spec.name!r}: ref({target}) names no resource of this project "
                f"(resources: {have}; ref(user) for users); add {target} first"
            )
        foreign_key = f"fk_{table}_{spec.column}_{target_table}"
        if len(foreign_key) > IDENTIFIER_LIMIT:
            raise UsageError(
                f"field {spec.name!r}: the foreign key name {foreign_key!r} would be "
                f"{len(foreign_key)} characters; PostgreSQL allows {IDENTIFIER_LIMIT}: shorten "
                "the field or the table name"
            )


def _pick(
    option: str, chosen: Sequence[str], fields: Sequence[Field], types: frozenset[str]
) -> list[str]:
    by_name = {spec.name: spec for spec in fields}
    picked: list[str] = []
    for name in chosen:
        if option == "--sort" and name == ALWAYS_SORTABLE:
            continue  # always sortable
        spec = by_name.get(name)
        if spec is None:
            raise UsageError(
                f"{option} {name!r} names no field of the resource (fields: {', '.join(by_name)})"
            )
        if spec.type not in types:
            raise UsageError(
                f"{option} {name!r}: a {spec.type} field cannot be used with {option}; only "
                f"{', '.join(sorted(types))} fields can"
            )
        if name in picked:
            raise UsageError(f"{option} {name!r} is given twice")
        picked.append(name)
    return picked


def _check_collisions(plan: ResourcePlan, taken: TakenNames) -> None:
    answers = plan.answers
    checks = [
        ("NAME", answers["resource"], taken.resources, "a resource or model"),
        ("--plural", answers["plural"], taken.resources, "a resource or model"),
        ("--class-name", answers["class_name"], taken.classes, "a class"),
        ("--table", answers["table"], taken.tables, "a table"),
        ("--url", answers["url"], taken.routes, "a route"),
    ]
    for what, value, names, kind in checks:
        if value in names:
            raise UsageError(
                f"{what} {value!r} collides with {kind} the project already has ({names[value]}); "
                "choose another name"
            )
    # Every revision the resource may ever have (an owner-scoped one becomes organization-scoped
    # when multi_tenant is switched on), and the base's, which an update may add later.
    for suffix in ("0001", "owner", "tenancy"):
        revision = f"{answers['resource']}_{suffix}"
        if revision in taken.revisions:
            raise UsageError(
                f"NAME {answers['resource']!r}: migrations/versions already has revision "
                f"{revision!r}, or the base template may add it; choose another name"
            )
    for relative in plan.files:
        if (plan.project / relative).exists():
            raise UsageError(
                f"NAME {answers['resource']!r}: {relative} already exists; choose another name"
            )


def plan_resource(
    project: Path,
    name: str,
    field_specs: Sequence[str],
    *,
    search: Sequence[str] = (),
    sort: Sequence[str] = (),
    scope: str | None = None,
    names: Names | None = None,
) -> ResourcePlan:
    """Check a resource against the project (which it does not change); UsageError when bad."""
    project = project.resolve()
    base = project_answers(project)
    resources = resource_answers(project)
    answers: dict[str, Any] = dict(_names(name, names or Names()))
    fields = tuple(parse_field(spec) for spec in field_specs)
    _check_fields(fields, answers["table"], name, base, resources)
    chosen_scope = scope or default_scope(base)
    _check_scope(chosen_scope, base)
    answers.update(
        fields=[spec.answer() for spec in fields],
        search=_pick("--search", search, fields, SEARCHABLE),
        sort=_pick("--sort", sort, fields, SORTABLE),
        scope=chosen_scope,
        down_revisions=alembic_heads(project),
    )
    plan = ResourcePlan(project=project, answers=answers, fields=fields)
    _check_collisions(plan, taken_names(project, resources))
    return plan


def render_resource(
    plan: ResourcePlan, template: str | None = None, vcs_ref: str | None = None
) -> list[str]:
    """Render the resource into its project (a clean git tree) from `template` at `vcs_ref`
    (default: the resource template that ships with backforge) and commit it; return the files
    it added.

    The template renders into a staging folder holding only the project's answers (which it
    reads through `_external_data`); its files are copied in only when none of them exists in
    the project, so a render never replaces a file. Any failure raises UsageError with the
    project as it was."""
    project = plan.project
    check_repository(project)
    check_clean(project)
    if template is None:
        template, vcs_ref = resource_template()
    with TemporaryDirectory(prefix="backforge-resource-") as tmp:
        staging = Path(tmp) / "project"
        staging.mkdir()
        shutil.copy2(project / PROJECT_ANSWERS, staging / PROJECT_ANSWERS)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                copier.run_copy(
                    template,
                    str(staging),
                    data={**project_context(project_answers(project)), **plan.answers},
                    answers_file=plan.answers_file,
                    vcs_ref=vcs_ref,
                    defaults=True,
                    unsafe=True,
                    quiet=True,
                )
        except (ValueError, copier.errors.CopierError) as exc:
            raise UsageError(f"the resource template refused the answers: {exc}") from exc
        rendered = sorted(
            path.relative_to(staging).as_posix()
            for path in staging.rglob("*")
            if path.is_file() and path.relative_to(staging).as_posix() != PROJECT_ANSWERS
        )
        missing = missing_imports(project, staging, rendered)
        if missing:
            raise UsageError(
                f"NAME {plan.name!r}: the resource template imports what this project does not "
                f"have yet ({', '.join(missing)}): it is newer than the project's template. Run "
                "`backforge update` in the project first, then add the resource"
            )
        clashes = [relative for relative in rendered if (project / relative).exists()]
        if clashes:
            raise UsageError(
                f"NAME {plan.name!r}: the resource would replace files the project already has "
                f"({', '.join(clashes)}); choose another name"
            )
        try:
            for relative in rendered:
                (project / relative).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(staging / relative, project / relative)
            git_commit(project, f"Add resource {plan.name} (backforge add resource)")
        except BaseException:
            restore(project)
            raise
    return rendered
