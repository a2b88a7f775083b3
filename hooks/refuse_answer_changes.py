"""Template migration: refuse an update that changes an answer the database depends on.

Used from `_migrations` in copier.yml at the `before` stage (before Copier writes anything),
offline, so that plain `copier update -d ...` users get the protection `backforge update` gives:
    command: ["{{ _copier_python }}", "{{ _copier_conf.src_path }}/hooks/refuse_answer_changes.py",
              "{{ _copier_conf.answers_file }}", "{{ _copier_conf.data | tojson }}"]

The answers file still holds the project's answers; the JSON argument holds the answers given
with `-d`. `database` never changes, and `auth` / `multi_tenant` and the features with revisions
of their own (`REVISION_FEATURES`, with `auth=jwt`) are never switched off: their revisions have
been applied to the database. (Copier gives a `before` migration no way to see an
answer changed at the interactive prompt; the rendered README says to keep these answers.)
A yes/no answer that is not a YAML boolean (`maybe`, `t`) is refused too (`yes_no.py`, the
parser backforge uses as well). Exit status 1 with one line per refused answer; 0 otherwise.
"""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path
from typing import Any

import yaml
from yes_no import parse_yes_no

FIXED = ("database",)
CAPABILITIES: dict[str, Any] = {"auth": "jwt", "multi_tenant": True}
# The features with revisions of their own (with auth=jwt).
REVISION_FEATURES = ("email", "billing", "audit", "oidc", "totp")


def _is_on(name: str, value: Any, on: Any) -> bool:
    """Whether `value` switches the capability `name` on (ValueError: not a yes/no answer)."""
    if isinstance(on, bool):
        return value is not None and parse_yes_no(value, name) == on
    return bool(value == on)


def refused(before: dict[str, Any], data: dict[str, Any]) -> list[str]:
    """The answers in `data` that must not change, each with the reason."""
    messages = [
        f"{name}: cannot change from {before[name]!r} to {data[name]!r} in an update: the "
        "project's data and applied migrations live in that database"
        for name in FIXED
        if name in data and name in before and data[name] != before[name]
    ]
    for name, on in CAPABILITIES.items():
        if name not in data:
            continue
        try:
            now_on = _is_on(name, data[name], on)
        except ValueError as error:
            messages.append(str(error))
            continue
        try:
            was_on = _is_on(name, before.get(name), on)
        except ValueError:
            was_on = False  # an answers file edited by hand: Copier itself will refuse it
        if was_on and not now_on:
            messages.append(
                f"{name}: cannot switch off ({before[name]!r} to {data[name]!r}) in an "
                "update: its tables hold data and the database has applied its revisions"
            )
    if "features" in data and before.get("auth", "jwt") == "jwt":
        had, keeps = _as_list(before.get("features")), _as_list(data["features"])
        messages += [
            f"features: cannot switch off {feature} ({had!r} to {keeps!r}) in an update: its "
            "tables hold data and the database has applied its revision"
            for feature in REVISION_FEATURES
            if feature in had and feature not in keeps
        ]
    return messages


def _as_list(value: Any) -> list[Any]:
    """A multiselect answer: a list, or `copier update -d` text (YAML, or a comma list)."""
    if isinstance(value, str):
        with contextlib.suppress(yaml.YAMLError):
            value = yaml.safe_load(value)
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",")]
    return list(value) if isinstance(value, list | tuple) else []


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: refuse_answer_changes.py ANSWERS_FILE DATA_JSON", file=sys.stderr)
        return 2
    answers_file = Path(argv[0])
    text = answers_file.read_text(encoding="utf-8") if answers_file.is_file() else "{}"
    before = yaml.safe_load(text)
    data = json.loads(argv[1] or "{}")
    if not isinstance(before, dict) or not isinstance(data, dict):
        return 0
    messages = refused(before, data)
    for message in messages:
        print(f"refused: {message}", file=sys.stderr)
    if messages:
        print("nothing was changed: an update switches capabilities on, never off", file=sys.stderr)
    return 1 if messages else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
