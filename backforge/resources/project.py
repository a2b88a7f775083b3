"""What a project already holds, read statically (nothing of the project is imported): its
answers, its resources, its Alembic heads, and the names a new resource must not take."""

from __future__ import annotations

import ast
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import yaml

from backforge.errors import UsageError

PROJECT_ANSWERS: Final = ".copier-answers.yml"
RESOURCE_ANSWERS_GLOB: Final = ".copier-answers.resource-*.yml"
VERSIONS: Final = "migrations/versions"
_ROUTE_METHODS: Final = frozenset(
    {
        "get",
        "post",
        "put",
        "patch",
        "delete",
        "head",
        "options",
        "api_route",
        "websocket",
        "add_api_route",
        "add_api_websocket_route",
        "add_route",
        "add_websocket_route",
        "mount",
    }
)


def resource_answers_file(name: str) -> str:
    """The answers file of resource `name`, relative to the project root."""
    return f".copier-answers.resource-{name}.yml"


PROJECT_KEYS: Final = ("database", "auth", "multi_tenant", "features")
"""The project's answers a resource depends on. The resource template records them (Copier
replays a resource's old version in an empty folder, where `_external_data` is empty), so the CLI
passes their current values on every render and update."""


def project_context(answers: Mapping[str, Any]) -> dict[str, Any]:
    """The project's current `PROJECT_KEYS` answers (`multi_tenant` false and `features` empty
    when absent), as data for the resource template."""
    context = {key: answers[key] for key in ("database", "auth") if key in answers}
    context["multi_tenant"] = answers.get("multi_tenant") is True
    context["features"] = list(answers.get("features") or [])
    return context


def resource_update_data(project: Mapping[str, Any], resource: Mapping[str, Any]) -> dict[str, Any]:
    """What a resource's update passes to its template: the project's current `PROJECT_KEYS`
    answers, and `scope: organization` when the project switched `multi_tenant` on since the
    resource was last rendered and the resource is owner-scoped.

    Its rows then move into their owners' personal organizations (the template's tenancy
    revision), as the project's items do; a global resource stays global. No other scope change
    is made: switching a capability off is refused before any template is updated.
    """
    data = project_context(project)
    switched_on = data["multi_tenant"] and resource.get("multi_tenant") is not True
    if switched_on and resource.get("scope") == "owner":
        data["scope"] = "organization"
    return data


def read_yaml(path: Path) -> dict[str, Any]:
    """An answers file as a mapping; UsageError naming the file when it cannot be read."""
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise UsageError(f"{path} cannot be read: {exc}") from exc
    if not isinstance(loaded, dict):
        raise UsageError(f"{path} is not a mapping of answers")
    return loaded


def resource_answers(project: Path) -> dict[str, dict[str, Any]]:
    """Every resource's answers, keyed by its answers file name, sorted."""
    return {path.name: read_yaml(path) for path in sorted(project.glob(RESOURCE_ANSWERS_GLOB))}


def project_answers(project: Path) -> dict[str, Any]:
    """The base template's answers; UsageError when `project` is not a backforge project."""
    path = project / PROJECT_ANSWERS
    if not project.is_dir():
        raise UsageError(f"{project} does not exist or is not a folder")
    if not path.is_file():
        raise UsageError(
            f"{project} is not a backforge project: it has no {PROJECT_ANSWERS} (run this in a "
            "project made by `backforge new`, or pass --project PATH)"
        )
    answers = read_yaml(path)
    missing = [key for key in ("database", "auth") if key not in answers]
    if missing or not (project / "app").is_dir():
        what = f"its {PROJECT_ANSWERS} has no {', '.join(missing)}" if missing else "no app/"
        raise UsageError(f"{project} is not a backforge project: {what}")
    return answers


# ---------------------------------------------------------------------------------------------
# Alembic heads
# ---------------------------------------------------------------------------------------------


def _literal(node: ast.expr | None) -> Any:
    if node is None:
        return None
    try:
        return ast.literal_eval(node)
    except (ValueError, SyntaxError, TypeError):
        return ...


def _revision_of(path: Path) -> tuple[str, tuple[str, ...]]:
    """`revision` and `down_revision` (as a tuple) of a revision file, read without importing."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except (OSError, UnicodeDecodeError, SyntaxError, ValueError) as exc:
        raise UsageError(f"{path} cannot be read as an Alembic revision: {exc}") from exc
    values: dict[str, Any] = {}
    for node in tree.body:
        value: ast.expr | None
        if isinstance(node, ast.Assign):
            targets = [t.id for t in node.targets if isinstance(t, ast.Name)]
            value = node.value
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            targets, value = [node.target.id], node.value
        else:
            continue
        for name in targets:
            if name in ("revision", "down_revision"):
                values[name] = _literal(value)
    revision, down = values.get("revision"), values.get("down_revision")
    if not isinstance(revision, str) or not revision:
        raise UsageError(f"{path} has no literal `revision = '...'`; Alembic heads are unknown")
    if down is None:
        return revision, ()
    if isinstance(down, str):
        return revision, (down,)
    if isinstance(down, tuple | list) and all(isinstance(item, str) for item in down):
        return revision, tuple(down)
    raise UsageError(
        f"{path}: down_revision must be None, a string or a tuple of strings (literal)"
    )


def revisions(project: Path) -> dict[str, tuple[str, ...]]:
    """Every revision of `migrations/versions` and what it revises."""
    found: dict[str, tuple[str, ...]] = {}
    folder = project / VERSIONS
    for path in sorted(folder.glob("*.py")) if folder.is_dir() else []:
        revision, down = _revision_of(path)
        if revision in found:
            raise UsageError(f"{path}: revision {revision!r} is defined twice in {VERSIONS}")
        found[revision] = down
    return found


def alembic_heads(project: Path) -> list[str]:
    """The project's Alembic heads, sorted: revisions no other revision revises."""
    graph = revisions(project)
    revised = {parent for parents in graph.values() for parent in parents}
    return sorted(set(graph) - revised)


# ---------------------------------------------------------------------------------------------
# Names taken
# ---------------------------------------------------------------------------------------------


BASE_TEMPLATE: Final = "the base template (in some variant: an update may add it later)"
BASE_NAMES: Final[Mapping[str, frozenset[str]]] = {
    "resources": frozenset(
        ["account_token", "audit", "billing", "item", "oidc", "organization", "totp", "user"]
    ),
    "classes": frozenset(
        [
            "AccountKind",
            "AccountToken",
            "ApiKey",
            "AuditChain",
            "AuditEvent",
            "BillingAccount",
            "BillingEvent",
            "EventStatus",
            "Invitation",
            "Item",
            "ItemBase",
            "Membership",
            "OidcIdentity",
            "OidcSignIn",
            "OrgRole",
            "Organization",
            "Principal",
            "RefreshToken",
            "Role",
            "TokenPurpose",
            "TotpCredential",
            "TotpRecoveryCode",
            "User",
        ]
    ),
    "tables": frozenset(
        [
            "account_tokens",
            "api_keys",
            "audit_chains",
            "audit_events",
            "billing_accounts",
            "billing_events",
            "invitations",
            "items",
            "memberships",
            "oidc_identities",
            "oidc_sign_ins",
            "organizations",
            "refresh_tokens",
            "totp_credentials",
            "totp_recovery_codes",
            "users",
        ]
    ),
    "routes": frozenset(
        [
            "account",
            "admin",
            "audit",
            "auth",
            "billing",
            "health",
            "invitations",
            "item-exports",
            "items",
            "metrics",
            "oidc",
            "oidc-links",
            "organizations",
            "ready",
            "two-factor",
            "users",
            "ws",
        ]
    ),
}
"""What the base template names in its fullest variant (jwt, multi_tenant, every feature): a
project that lacks a capability today may switch it on in an update, so a resource never takes
these (tests/test_resources_cli.py checks the list against a render)."""
BASE_REVISIONS: Final = frozenset(
    {
        "core_0001",
        "auth_0001",
        "email_0001",
        "billing_0001",
        "tenancy_0001",
        "audit_0001",
        "oidc_0001",
        "totp_0001",
    }
)
"""The base template's revision ids in its fullest variant, likewise never a resource's."""


@dataclass
class TakenNames:
    """Names in the project that a new resource must not reuse, each with where it is used."""

    resources: dict[str, str] = field(default_factory=dict)
    classes: dict[str, str] = field(default_factory=dict)
    tables: dict[str, str] = field(default_factory=dict)
    routes: dict[str, str] = field(default_factory=dict)
    """First URL path segments (under /api/v1 or at the root)."""
    revisions: set[str] = field(default_factory=set)


def _python_files(folder: Path) -> Iterator[tuple[Path, ast.Module]]:
    for path in sorted(folder.rglob("*.py")) if folder.is_dir() else []:
        try:
            yield path, ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        except (OSError, UnicodeDecodeError, SyntaxError, ValueError):
            continue  # a broken file of the user's is not ours to judge here


def _first_segment(path: str) -> str | None:
    segment = path.strip("/").split("/", 1)[0]
    return segment or None


def _string(node: ast.expr) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def taken_names(project: Path, resources: Mapping[str, Mapping[str, Any]]) -> TakenNames:
    """Resources, model classes, tables, routes and revisions the project has."""
    taken = TakenNames()
    for kind, names in BASE_NAMES.items():
        getattr(taken, kind).update(dict.fromkeys(names, BASE_TEMPLATE))
    for file_name, answers in resources.items():
        for key in ("resource", "plural"):
            if isinstance(answers.get(key), str):
                taken.resources[answers[key]] = file_name
        if isinstance(answers.get("class_name"), str):
            taken.classes[answers["class_name"]] = file_name
        if isinstance(answers.get("table"), str):
            taken.tables[answers["table"]] = file_name
        if isinstance(answers.get("url"), str):
            taken.routes[answers["url"]] = file_name
    for path, tree in _python_files(project / "app" / "models"):
        relative = path.relative_to(project).as_posix()
        if path.stem != "__init__":
            taken.resources.setdefault(path.stem, relative)
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                taken.classes.setdefault(node.name, relative)
            elif isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "__tablename__" for t in node.targets
            ):
                table = _string(node.value)
                if table:
                    taken.tables.setdefault(table, relative)
    for path, tree in _python_files(project / VERSIONS):
        relative = path.relative_to(project).as_posix()
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "create_table"
                and node.args
            ):
                table = _string(node.args[0])
                if table:
                    taken.tables.setdefault(table, relative)
    for path, tree in _python_files(project / "app"):
        relative = path.relative_to(project).as_posix()
        if path.parent.name == "routers" and path.stem != "__init__":
            taken.routes.setdefault(path.stem.replace("_", "-"), relative)
        prefixes: list[str] = []
        paths: list[str] = []
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            for keyword in node.keywords:
                value = _string(keyword.value)
                if keyword.arg == "prefix" and value:
                    prefixes.append(value)
            if (
                isinstance(node.func, ast.Attribute)
                and node.func.attr in _ROUTE_METHODS
                and node.args
            ):
                value = _string(node.args[0])
                if value:
                    paths.append(value)
        # A router with a prefix owns that segment; its operations' paths sit below it.
        for route in prefixes or paths:
            segment = _first_segment(route) if route.startswith("/") else None
            if segment and not segment.startswith("{"):
                taken.routes.setdefault(segment, relative)
    taken.revisions = set(revisions(project)) | BASE_REVISIONS
    return taken


# -- what a rendered resource imports from the project ----------------------------------------


def _defined_names(module: ast.Module) -> set[str] | None:
    """The top-level names a module binds (None when a star import makes that unknowable)."""
    names: set[str] = set()
    pending: list[ast.stmt] = list(module.body)
    while pending:
        node = pending.pop()
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            if node.name == "__getattr__":  # PEP 562: any name may exist
                return None
            names.add(node.name)
        elif isinstance(node, ast.Assign | ast.AnnAssign | ast.AugAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                names.update(n.id for n in ast.walk(target) if isinstance(n, ast.Name))
        elif isinstance(node, ast.Import | ast.ImportFrom):
            for alias in node.names:
                if alias.name == "*":
                    return None
                names.add(alias.asname or alias.name.split(".", 1)[0])
        elif isinstance(node, ast.If | ast.Try | ast.With | ast.AsyncWith):
            pending.extend(_blocks(node))
    return names


def _blocks(node: ast.If | ast.Try | ast.With | ast.AsyncWith) -> list[ast.stmt]:
    """The statements of a compound statement's blocks (both arms of an `if`, every handler)."""
    found: list[ast.stmt] = list(node.body)
    if isinstance(node, ast.If):
        found += node.orelse
    elif isinstance(node, ast.Try):
        found += node.orelse + node.finalbody
        for handler in node.handlers:
            found += handler.body
    return found


def _module_file(roots: Sequence[Path], module: str) -> Path | None:
    """Where `module` (dotted) lives under the first root that has it: a .py or a package."""
    relative = Path(*module.split("."))
    for root in roots:
        for candidate in (root / relative.with_suffix(".py"), root / relative / "__init__.py"):
            if candidate.is_file():
                return candidate
    return None


def missing_imports(project: Path, staging: Path, rendered: Sequence[str]) -> list[str]:
    """`module.name` for every `from app... import name` in the rendered Python files that
    neither the project nor the rendered files provide: a resource template newer than the
    project (which `backforge update` would bring up to date) imports what is not there yet."""
    roots = (staging, project)
    defined: dict[Path, set[str] | None] = {}
    missing: list[str] = []
    for relative in rendered:
        if not relative.endswith(".py"):
            continue
        try:
            tree = ast.parse((staging / relative).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, SyntaxError, ValueError):
            continue  # the static tier proves the template's own files parse
        for node in ast.walk(tree):
            if not isinstance(node, ast.ImportFrom) or node.level or not node.module:
                continue
            if node.module != "app" and not node.module.startswith("app."):
                continue
            path = _module_file(roots, node.module)
            if path is None:
                missing.append(node.module)
                continue
            if path not in defined:
                try:
                    defined[path] = _defined_names(ast.parse(path.read_text(encoding="utf-8")))
                except (OSError, UnicodeDecodeError, SyntaxError, ValueError):
                    defined[path] = None  # a file of the user's we cannot judge: trust it
            names = defined[path]
            for alias in node.names:
                submodule = _module_file(roots, f"{node.module}.{alias.name}")
                if names is not None and alias.name not in names and submodule is None:
                    missing.append(f"{node.module}.{alias.name}")
    return sorted(set(missing))
