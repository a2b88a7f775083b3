"""One pattern: the base template's item files are the resource template's files, rendered with
the answers that describe `items`, byte for byte, in every static-tier variant.

The base files get there by construction (each includes resource/items.jinja, which includes the
resource template's file); this test holds both ends: it renders the resource template itself, with
items' answers as `backforge add resource` would pass them, and the base template's item files,
each in its own template root (the roots Copier's loader uses), with the `_envops` of each
copier.yml. In process and deduplicated by the answers the files read, so it takes seconds.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

import copier
import yaml
from copier._jinja_ext import CopierTemplateLoader, YieldExtension
from jinja2 import StrictUndefined
from jinja2.sandbox import SandboxedEnvironment

from backforge.model.sets import select

REPO = Path(__file__).resolve().parent.parent
RESOURCE = REPO / "resource"

# Each base item file (under template/app/) and the resource template's file it must equal.
ITEM_FILES: Mapping[str, str] = {
    "models/item.py": "models/{{ resource }}.py",
    "schemas/item.py": "schemas/{{ resource }}.py",
    "repositories/item.py": "repositories/{{ resource }}.py",
    "services/item.py": "services/{{ resource }}.py",
    "dependencies/item.py": "dependencies/{{ resource }}.py",
    "routers/items.py": "routers/{{ plural }}.py",
}
# With jobs, the CSV export job's files (conditional file names, as Copier reads them).
EXPORT_FILES: Mapping[str, str] = {
    "services/{% if 'jobs' in features %}item_export.py{% endif %}": (
        "services/{% if 'jobs' in features %}{{ resource }}_export.py{% endif %}"
    ),
    "dependencies/{% if 'jobs' in features %}item_export.py{% endif %}": (
        "dependencies/{% if 'jobs' in features %}{{ resource }}_export.py{% endif %}"
    ),
    "routers/{% if 'jobs' in features %}item_exports.py{% endif %}": (
        "routers/{% if 'jobs' in features %}{{ plural }}_exports.py{% endif %}"
    ),
}

# What `backforge add resource item --field name:str(120) --field 'description:str(1000)?'
# --search name --sort name` passes (the derived names spelled out); `scope` is the resource
# template's default for the project.
ITEMS_ANSWERS: Mapping[str, Any] = {
    "resource": "item",
    "plural": "items",
    "class_name": "Item",
    "table": "items",
    "url": "items",
    "tag": "items",
    "fields": [
        {"name": "name", "type": "str", "optional": False, "length": 120},
        {"name": "description", "type": "str", "optional": True, "length": 1000},
    ],
    "search": ["name"],
    "sort": ["name"],
    "down_revisions": [],
}
# With admin, items' view in the back office.
ADMIN_FILES: Mapping[str, str] = {
    "{% if 'admin' in features %}admin{% endif %}/views/item.py": (
        "{% if 'admin' in features %}admin{% endif %}/views/{{ resource }}.py"
    ),
}
PROJECT_ANSWERS = ("database", "auth", "multi_tenant", "features")
# What the resource template renders for items' export job with `jobs`.
EXPORTED = {
    "app/services/item_export.py",
    "app/dependencies/item_export.py",
    "app/routers/items_exports.py",
}


@cache
def _environment(root: Path) -> SandboxedEnvironment:
    """Jinja as Copier sets it up for the template at `root`: its loader (rooted there), its
    default extensions and the `_envops` of its copier.yml."""
    envops = dict(yaml.safe_load((root / "copier.yml").read_text())["_envops"])
    assert envops.pop("undefined") == "jinja2.StrictUndefined"
    return SandboxedEnvironment(
        loader=CopierTemplateLoader(root),
        extensions=["jinja2_ansible_filters.AnsibleCoreFiltersExtension", YieldExtension],
        undefined=StrictUndefined,
        **envops,
    )


def _features_read() -> frozenset[str]:
    """Every feature that a file the base's items are made of tests (`'x' in features`)."""
    sources = [RESOURCE / "items.jinja", RESOURCE / "macros.jinja"]
    files = {**ITEM_FILES, **EXPORT_FILES, **ADMIN_FILES}
    sources += [RESOURCE / "template" / "app" / f"{name}.jinja" for name in files.values()]
    sources += [REPO / "template" / "app" / f"{name}.jinja" for name in files]
    pattern = re.compile(r"""['"](\w+)['"]\s+(?:not\s+)?in\s+features\b""")
    # A file's name is read too (the export files exist with `jobs` only).
    texts = [f"{source.name}\n{source.read_text()}" for source in sources]
    return frozenset(m for text in texts for m in pattern.findall(text))


def _variants() -> list[dict[str, Any]]:
    """The static tier's variants (`all`), one per distinct value of what the item files read."""
    read = _features_read()
    distinct: dict[tuple[Any, ...], dict[str, Any]] = {}
    for answers in select(REPO, "all"):
        project = {
            "database": answers["database"],
            "auth": answers["auth"],
            "multi_tenant": answers.get("multi_tenant", False),
            "features": [f for f in answers["features"] if f in read],
        }
        key = (*(repr(project[name]) for name in PROJECT_ANSWERS),)
        distinct.setdefault(key, {**answers, "multi_tenant": project["multi_tenant"]})
    return list(distinct.values())


def _items_answers(project: Mapping[str, Any]) -> dict[str, Any]:
    """Items' answers for the resource template in this project, `scope` its default."""
    questions = yaml.safe_load((RESOURCE / "copier.yml").read_text())
    answers = {**ITEMS_ANSWERS, **{name: project[name] for name in PROJECT_ANSWERS}}
    scope = _environment(RESOURCE).from_string(questions["scope"]["default"]).render(**answers)
    return {**answers, "scope": scope.strip()}


def _mismatches(variants: list[dict[str, Any]]) -> list[str]:
    base, resource = _environment(REPO), _environment(RESOURCE)
    found = []
    for answers in variants:
        items = _items_answers(answers)
        files = {
            **ITEM_FILES,
            **(EXPORT_FILES if "jobs" in answers["features"] else {}),
            **(ADMIN_FILES if "admin" in answers["features"] else {}),
        }
        for base_file, resource_file in files.items():
            expected = resource.get_template(f"template/app/{resource_file}.jinja").render(items)
            rendered = base.get_template(f"template/app/{base_file}.jinja").render(answers)
            if rendered != expected:
                diff = difflib.unified_diff(
                    expected.splitlines(keepends=True),
                    rendered.splitlines(keepends=True),
                    f"resource template: {resource_file}",
                    f"base template: {base_file}",
                )
                variant = {name: answers.get(name) for name in PROJECT_ANSWERS}
                found.append(f"{base_file} in {variant}:\n{''.join(diff)}")
    return found


def test_the_base_item_files_are_the_resource_template_rendered_for_items() -> None:
    variants = _variants()
    # Every project shape the item files tell apart is among them (and nothing was deduplicated
    # away that they read: the features they test are kept in each variant).
    assert {(v["auth"], v["multi_tenant"]) for v in variants} == {
        ("none", False),
        ("jwt", False),
        ("jwt", True),
    }
    assert {"cache", "websockets", "jobs", "audit", "admin"} <= _features_read()
    assert any("jobs" in v["features"] for v in variants)
    assert any("admin" in v["features"] for v in variants)
    mismatches = _mismatches(variants)
    assert not mismatches, f"{len(mismatches)} differ; the first:\n{mismatches[0]}"


def test_without_jobs_a_resource_renders_no_export(tmp_path: Path) -> None:
    """The export files' conditional names, as Copier renders them: none without `jobs`, all
    three with it (items' answers: the files the comparison above reads)."""
    for features, expected in (([], set()), (["jobs"], EXPORTED)):
        project = {"database": "sqlite", "auth": "none", "multi_tenant": False}
        dest = tmp_path / ("jobs" if features else "plain")
        data = {**ITEMS_ANSWERS, **project, "features": features}
        copier.run_copy(str(RESOURCE), str(dest), data=data, defaults=True, unsafe=True, quiet=True)
        rendered = {p.relative_to(dest).as_posix() for p in dest.rglob("*.py")}
        assert "app/services/item.py" in rendered
        assert {path for path in rendered if "export" in path} == expected, rendered
