"""`backforge questions`: the questions of copier.yml, their values and defaults."""

from __future__ import annotations

from typing import Any

from rich.markup import escape
from rich.table import Table

from backforge.cli.common import TemplateOption, VcsRefOption, console, fail
from backforge.errors import UsageError
from backforge.model import Question, VariantError, load_questions, yaml_flow
from backforge.report import print_unclipped
from backforge.template import resolve_template, template_checkout


def _values(question: Question) -> str:
    choices = ", ".join(str(choice) for choice in question.choices)
    if question.multiselect:
        return f"any of: {choices} (-d {question.name}=a,b; none: -d {question.name}=)"
    if question.type == "bool":
        return "true / false (or yes/no, on/off, y/n)"
    if question.choices:
        return choices
    return "text" if question.type == "str" else question.type


def _default(question: Question) -> str:
    if not question.has_default:
        return "required"
    raw: Any = question.default
    if isinstance(raw, str) and ("{{" in raw or "{%" in raw):
        return "derived from the other answers"
    return yaml_flow(raw)


def _asked_when(question: Question) -> str:
    if isinstance(question.when, bool):
        return "always" if question.when else "never"
    return question.when.strip().removeprefix("{{").removesuffix("}}").strip()


def questions(template: TemplateOption = None, vcs_ref: VcsRefOption = None) -> None:
    """List the questions that `new -d KEY=VALUE` answers: values, defaults (from copier.yml)."""
    try:
        source, ref = resolve_template(template, vcs_ref)
        with template_checkout(source, ref, at_ref=True) as folder:
            found = [question for question in load_questions(folder) if not question.computed]
    except (UsageError, VariantError) as exc:
        raise fail(str(exc)) from exc
    table = Table(title="Questions (answer with -d KEY=VALUE; VALUE is YAML, text as typed)")
    table.add_column("question", no_wrap=True)
    for column in ("values", "default", "asked when"):
        table.add_column(column)
    table.add_column("help", max_width=60)
    for question in found:
        summary = question.help.split(". ", 1)[0]
        cells = (_values(question), _default(question), _asked_when(question), summary)
        table.add_row(escape(question.name), *(escape(text) for text in cells))
    print_unclipped(console, table)
