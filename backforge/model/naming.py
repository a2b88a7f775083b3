"""Names for variants: short ids, one-line YAML values, and the command that reproduces one."""

from __future__ import annotations

import hashlib
import json
import shlex
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from backforge.model.questions import (
    CODE_QUESTIONS,
    CONFIG_FILES,
    PLACEHOLDER_ANSWERS,
    load_template,
)


def _id_part(value: str) -> str:
    cleaned = "".join(c if c.isalnum() or c in "_.+" else "_" for c in value.lower())
    return cleaned.strip("_") or "_"


def variant_id(answers: Mapping[str, Any], defaults: Mapping[str, Any] | None = None) -> str:
    """A short, stable, readable id such as `postgresql-jwt-mt-cache+jobs`.

    It names the code questions' values (a true bool by its initials, a list joined with `+`).
    Given `defaults` (see `default_answers`), non-code answers that differ from them add a short
    hash suffix, so that the ids of a pairwise set stay unique.
    """
    parts: list[str] = []
    for name in CODE_QUESTIONS:
        value = answers.get(name)
        if isinstance(value, bool):
            if value:
                parts.append("".join(word[:1] for word in name.split("_") if word))
        elif isinstance(value, list | tuple):
            if value:
                parts.append("+".join(_id_part(str(v)) for v in value))
        elif value is not None and value != "":
            parts.append(_id_part(str(value)))
    ident = "-".join(parts) or "default"
    if defaults is not None:
        changed = {
            key: value
            for key, value in answers.items()
            if key not in CODE_QUESTIONS and (key not in defaults or defaults[key] != value)
        }
        if changed:
            digest = json.dumps(changed, sort_keys=True, default=str).encode()
            ident += "-" + hashlib.sha256(digest).hexdigest()[:6]
    return ident


def variant_ids(
    variants: Sequence[Mapping[str, Any]], defaults: Mapping[str, Any] | None = None
) -> list[str]:
    """`variant_id` of each variant, made unique within the list (`-2`, `-3` ... on repeats):
    the ids `check` names its variants by, and `variants` lists."""
    seen: dict[str, int] = {}
    ids: list[str] = []
    for answers in variants:
        base = variant_id(answers, defaults)
        seen[base] = seen.get(base, 0) + 1
        ids.append(base if seen[base] == 1 else f"{base}-{seen[base]}")
    return ids


def yaml_flow(value: Any) -> str:
    """A one-line YAML (flow) form that reads back as `value`: `[cache, jobs]`, `true`, `'1'`."""
    text = str(yaml.safe_dump(value, default_flow_style=True, width=sys.maxsize, sort_keys=False))
    text = text.strip()
    return text.removesuffix("...").strip() if text.endswith("\n...") else text


def reproduce_command(
    answers: Mapping[str, Any], template: str, defaults: Mapping[str, Any] | None = None
) -> str:
    """`backforge new /tmp/<id> --template T --defaults -d k=v ...`, shell-quoted.

    One `-d` per answer that differs from its default (project_name always). When `template` is
    a local directory the defaults are evaluated as Copier would, given the other `-d` answers
    (so a derived default such as project_slug is passed only when the variant overrides it).
    Otherwise `defaults` (see `default_answers`) are compared, or, without them, every answer
    is passed.
    """
    local = any((Path(template) / name).is_file() for name in CONFIG_FILES)
    passed = {key for key in answers if key in PLACEHOLDER_ANSWERS}
    if local:
        tpl = load_template(Path(template))
        if defaults is None:
            defaults = tpl.walk({}).resolved
        for _ in range(len(answers) + 1):
            implied = tpl.walk({key: answers[key] for key in passed}).resolved
            differing = [k for k, x in answers.items() if k not in passed and implied.get(k) != x]
            if not differing:
                break
            passed.add(differing[0])  # the first one may change the defaults of later ones
    else:
        passed |= {
            key
            for key, value in answers.items()
            if defaults is None or key not in defaults or defaults[key] != value
        }
    args = [
        "backforge",
        "new",
        f"/tmp/{variant_id(answers, defaults)}",  # noqa: S108 - a name to show, not a temp file
        "--template",
        template,
        "--defaults",
    ]
    for key, value in answers.items():
        if key in passed:
            args += ["-d", f"{key}={yaml_flow(value)}"]
    return shlex.join(args)
