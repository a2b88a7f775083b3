"""The resource template's CSV export job (with `jobs`) is the items export of the base template:
rendered with the answers that describe `items`, its export service, export service dependency
and export router are the base template's item files, byte for byte, in every scope a jobs
project gives items (global without auth, owner with jwt, organization with multi_tenant).

One pattern: a change to either side that the other lacks fails here. Static (no install): each
variant renders the base template once and the resource template once, about a second each.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import copier
import pytest

from backforge.render import render

REPO = Path(__file__).resolve().parent.parent
RESOURCE = REPO / "resource"

# `items` as the resource template's answers (see resource/copier.yml); the export files use
# its names and scope, not its fields.
ITEMS: dict[str, Any] = {
    "resource": "item",
    "plural": "items",
    "class_name": "Item",
    "table": "items",
    "url": "items",
    "tag": "items",
    "fields": [
        {"name": "name", "type": "str", "length": 120, "optional": False},
        {"name": "description", "type": "str", "length": 1000, "optional": True},
    ],
    "search": ["name"],
    "sort": ["name"],
    "down_revisions": ["core_0001"],
}
EXPORT_FILES = (
    "app/services/item_export.py",
    "app/dependencies/item_export.py",
    "app/routers/items_exports.py",
)
BASE_NAMES = {"app/routers/items_exports.py": "app/routers/item_exports.py"}

VARIANTS: dict[str, dict[str, Any]] = {
    "global": {"database": "sqlite", "auth": "none", "features": ["jobs"]},
    "owner": {"database": "sqlite", "auth": "jwt", "features": ["jobs", "cache"]},
    "organization": {
        "database": "postgresql",
        "auth": "jwt",
        "multi_tenant": True,
        "features": ["jobs", "email", "websockets"],
    },
}


def render_items_resource(dest: Path, project: dict[str, Any]) -> None:
    data = {
        **ITEMS,
        "database": project["database"],
        "auth": project["auth"],
        "multi_tenant": project.get("multi_tenant", False),
        "features": project["features"],
    }
    copier.run_copy(str(RESOURCE), str(dest), data=data, defaults=True, unsafe=True, quiet=True)


@pytest.mark.parametrize("scope", list(VARIANTS))
def test_the_items_answers_render_the_base_items_export(scope: str, tmp_path: Path) -> None:
    answers = VARIANTS[scope]
    base = tmp_path / "base"
    render(str(REPO), base, {"project_name": "Shop", **answers}, quiet=True, skip_tasks=True)
    resource = tmp_path / "resource"
    render_items_resource(resource, answers)
    for path in EXPORT_FILES:
        base_path = base / BASE_NAMES.get(path, path)
        assert base_path.is_file(), f"the base template renders no {base_path.name}"
        assert (resource / path).read_bytes() == base_path.read_bytes(), path


def test_without_jobs_a_resource_renders_no_export(tmp_path: Path) -> None:
    render_items_resource(tmp_path, {"database": "sqlite", "auth": "none", "features": ["cache"]})
    rendered = {p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.py")}
    assert "app/services/item.py" in rendered
    assert not [path for path in rendered if "export" in path], rendered
