"""Answers given on the command line (`-d KEY=VALUE`): read, then checked against copier.yml.

`parse_data` splits each `-d KEY=VALUE`. `check_data` reads each value as its question does, as
Copier does (a text answer as typed, so that `-d description=yes` stays `yes` and
`-d 'project_name=Shop: API'` stays a name; any other as YAML), then holds every answer to its
question before anything is rendered or updated, so that a mistake exits 2 with the question's
name and what it accepts instead of being rendered (`multi_tenant=maybe` read as true), ignored
(`-d colour=blue`) or turned into a traceback (`features=cache`):

- an unknown name is refused with the closest question's name;
- a yes/no answer must be a YAML boolean (`parse_yes_no`, the parser the template's hooks use);
- a multiple-choice answer may be a YAML list, one value, values separated by commas, or
  nothing (`-d features=`), and each value must be one of the question's choices;
- a single-choice answer must be one of the question's choices;
- a question must be asked with the answers it joins (`-d auth=none -d multi_tenant=true`
  is refused: Copier would drop `multi_tenant` without a word).

Everything else (validators) stays Copier's job.
"""

from __future__ import annotations

import functools
import importlib.util
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml

from backforge.errors import UsageError
from backforge.model.questions import (
    Question,
    closest_hint,
    load_template,
    not_asked,
    same_value,
)
from backforge.source import hooks_dir

__all__ = ["check_data", "parse_data", "parse_yes_no", "yes_no_module"]


def parse_data(items: Iterable[str]) -> dict[str, Any]:
    """Split `KEY=VALUE` pairs; each value stays text until `check_data` reads it as its question
    does (YAML but for text questions, as in Copier: `-d 'features=[cache, jobs]'`)."""
    data: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise UsageError(f"-d expects KEY=VALUE, got {item!r}")
        data[key] = raw
    return data


def _read(question: Question, value: Any) -> Any:
    """A `-d` text as `question` reads it: a text question keeps it as typed (Copier does too:
    `yes`, `1.10`, `Shop: API` and `#1 team` are names, not a boolean, a number, a mapping or a
    comment); any other question reads it as YAML. Values that are not text are kept."""
    if not isinstance(value, str) or (question.type == "str" and not question.multiselect):
        return value
    if not value.strip():
        return ""
    try:
        return yaml.safe_load(value)
    except yaml.YAMLError as exc:
        raise UsageError(f"-d {question.name}: the value is not valid YAML ({exc})") from exc


@functools.cache
def yes_no_module() -> ModuleType:
    """The template's `hooks/yes_no.py`, loaded from backforge's own template (the checkout's or
    the wheel's): the hooks run in Copier's interpreter and cannot import backforge, so backforge
    imports their file instead of keeping a second parser."""
    path = hooks_dir() / "yes_no.py"
    spec = importlib.util.spec_from_file_location("backforge._yes_no", path)
    if spec is None or spec.loader is None:  # pragma: no cover - a file path always has a loader
        raise RuntimeError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def parse_yes_no(value: object, question: str) -> bool:
    """`value` as the answer to a yes/no question: a YAML boolean, else UsageError naming the
    question and the accepted values."""
    try:
        return bool(yes_no_module().parse_yes_no(value, question))
    except ValueError as exc:
        raise UsageError(str(exc)) from exc


def _allowed(question: Question) -> str:
    return ", ".join(str(choice) for choice in question.choices)


def _list_answer(question: Question, value: Any) -> list[Any]:
    name = question.name
    if value is None or value == "":
        items: list[Any] = []
    elif isinstance(value, str):
        items = [part.strip() for part in value.split(",") if part.strip()]
    elif isinstance(value, list | tuple):
        items = list(value)
    else:
        items = [value]
    for item in items:
        if question.choices and not any(same_value(item, choice) for choice in question.choices):
            raise UsageError(
                f"{name}: {item!r} is not one of its values ({_allowed(question)}); give one "
                f"value (-d {name}=cache), several separated by commas (-d {name}=cache,jobs), "
                f"a YAML list (-d '{name}=[cache, jobs]') or none (-d {name}=)"
            )
    return items


def _checked(question: Question, value: Any) -> Any:
    if question.multiselect:
        return _list_answer(question, value)
    if question.type == "bool":
        return parse_yes_no(value, question.name)
    if question.choices and not any(same_value(value, choice) for choice in question.choices):
        raise UsageError(
            f"{question.name}: {value!r} is not in the values it accepts: {_allowed(question)}"
        )
    return value


def check_data(
    template: Path, data: Mapping[str, Any], context: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """`data` (from `parse_data`) read and held to the questions of `template`'s copier.yml: text
    as typed, yes/no answers as booleans, multiple choices as lists, the rest YAML. `context`
    holds the answers `data` joins (a preset's, or the project's in an update): with them, every
    answer in `data` must be to a question that is asked. UsageError, one line per problem,
    naming each question and what it accepts."""
    questions = load_template(template)
    asked = [question.name for question in questions.questions if not question.computed]
    checked: dict[str, Any] = {}
    problems: list[str] = []
    for name, value in data.items():
        question = questions.by_name.get(name)
        if question is None:
            hint = closest_hint(name, asked)
            problems.append(f"unknown question {name!r} given with -d ({hint})")
        elif question.computed:
            problems.append(f"{name}: a computed value (when: false), not a question to answer")
        else:
            try:
                checked[name] = _checked(question, _read(question, value))
            except UsageError as exc:
                problems.append(str(exc))
    if not problems:
        walk = questions.walk({**(context or {}), **checked})
        problems += [
            not_asked(questions, name, walk, checked[name]) for name in walk.dead if name in checked
        ]
    if problems:
        raise UsageError("\n".join(problems))
    return checked
