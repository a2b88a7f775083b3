"""Reading copier.yml like Copier does: the questions, their Jinja (sandboxed, with the Ansible
core filters and the template's `_envops`), defaults, `when` rules and validators.

Python names only the code-affecting questions (`CODE_QUESTIONS`); everything else comes from
copier.yml.
"""

from __future__ import annotations

import contextlib
import difflib
import json
import sys
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from functools import lru_cache
from pathlib import Path
from typing import Any, Final

import jinja2
import jinja2.meta
import yaml
from jinja2.sandbox import SandboxedEnvironment

CODE_QUESTIONS: Final = ("database", "auth", "multi_tenant", "features")
"""Questions whose answers change the rendered code (those missing from copier.yml are ignored)."""

PLACEHOLDER_ANSWERS: Final[Mapping[str, Any]] = {"project_name": "Forge App"}
"""Answers used for required questions without a default, when no answer is given."""

CONFIG_FILES: Final = ("copier.yml", "copier.yaml")
_UNDEFINED_CLASSES: Final[Mapping[str, type[jinja2.Undefined]]] = {
    "jinja2.Undefined": jinja2.Undefined,
    "jinja2.StrictUndefined": jinja2.StrictUndefined,
}
_EXTENSIONS: Final = ("jinja2_ansible_filters.AnsibleCoreFiltersExtension",)


class VariantError(ValueError):
    """A variant set specification, a preset or an answer set that Copier would not accept."""


class _Missing(Enum):
    MISSING = "MISSING"


MISSING: Final = _Missing.MISSING


@dataclass
class Question:
    """One question of copier.yml, raw: Jinja in `default`, `when` and `validator` is kept."""

    name: str
    type: str = "str"
    help: str = ""
    choices: list[Any] = field(default_factory=list)
    """Choice values (labels dropped), in copier order."""
    default: Any = None
    """Raw default (may be a Jinja string); meaningful only when `has_default`."""
    when: str | bool = True
    multiselect: bool = False
    validator: str = ""
    computed: bool = False
    """`when: false`: a derived value, never asked and never part of a variant."""
    has_default: bool = False
    choice_validators: list[str] = field(default_factory=list)
    """Per choice, the raw Jinja that disables it when it renders non-empty ("" = always on)."""

    @property
    def is_factor(self) -> bool:
        """True when the question has a finite set of values (choices, or a bool)."""
        return bool(self.choices) or self.type == "bool"


# ---------------------------------------------------------------------------------------------
# Loading copier.yml
# ---------------------------------------------------------------------------------------------


def _config_path(template: Path) -> Path:
    for name in CONFIG_FILES:
        path = Path(template) / name
        if path.is_file():
            return path
    raise VariantError(f"no copier.yml or copier.yaml in template {str(template)!r}")


def _read_config(path: Path) -> dict[str, Any]:
    """Read copier.yml with Copier's own quirks (`!include`, several YAML documents)."""
    try:
        from copier._template import load_template_config
    except ImportError:  # pragma: no cover - Copier moved its private loader
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    else:
        try:
            data = load_template_config(path, quiet=True)
        except Exception as error:
            raise VariantError(f"cannot read {path}: {error}") from error
    if not isinstance(data, dict):
        raise VariantError(f"{path} is not a mapping of settings and questions")
    return data


_CAST_TYPES: Final = ("bool", "float", "int", "json", "str", "yaml", "path")


def _infer_type(details: Mapping[str, Any]) -> str:
    declared = details.get("type")
    if declared:
        return str(declared)
    name = type(details.get("default", MISSING)).__name__
    return name if name in _CAST_TYPES else "yaml"


def _is_static_false(when: Any) -> bool:
    if isinstance(when, bool):
        return not when
    return isinstance(when, str) and "{" not in when and not _cast_to_bool(when)


def _question(name: str, details: Any, base_context: Mapping[str, Any], env: _Env) -> Question:
    if not isinstance(details, dict):
        details = {"default": details}  # Copier's simplified question format
    raw_choices = details.get("choices") or []
    if isinstance(raw_choices, str):
        try:
            raw_choices = yaml.safe_load(env.render(raw_choices, base_context, name)) or []
        except (RenderError, yaml.YAMLError) as error:
            raise VariantError(
                f"{name}: choices templated on other answers are not supported ({error})"
            ) from error
    pairs: list[tuple[Any, Any]] = (
        list(raw_choices.items())
        if isinstance(raw_choices, dict)
        else [tuple(c) if isinstance(c, list | tuple) else (c, c) for c in raw_choices]
    )
    type_name = _infer_type(details)
    choices: list[Any] = []
    choice_validators: list[str] = []
    for _label, value in pairs:
        disabled = ""
        if isinstance(value, dict):  # extended syntax: {value: ..., validator: ...}
            disabled = str(value.get("validator", ""))
            value = value["value"]
        with contextlib.suppress(TypeError, ValueError, yaml.YAMLError):
            value = _cast(type_name, value)
        choices.append(value)
        choice_validators.append(disabled)
    when = details.get("when", True)
    return Question(
        name=name,
        type=type_name,
        help=str(details.get("help", "") or ""),
        choices=choices,
        default=details.get("default"),
        when=when if isinstance(when, bool) else str(when),
        multiselect=bool(details.get("multiselect", False)),
        validator=str(details.get("validator", "") or ""),
        computed=_is_static_false(when),
        has_default="default" in details,
        choice_validators=choice_validators,
    )


def load_questions(template: Path) -> list[Question]:
    """Read `<template>/copier.yml` (or copier.yaml): its questions, in order, settings skipped."""
    return list(load_template(Path(template)).questions)


# ---------------------------------------------------------------------------------------------
# Copier's casting and Jinja evaluation
# ---------------------------------------------------------------------------------------------


def _cast_to_bool(value: Any) -> bool:
    """Copier's truthiness: numbers, then YAML booleans and nulls, then `bool()`."""
    try:
        return bool(float(value))
    except (TypeError, ValueError):
        pass
    if isinstance(value, str):
        lower = value.strip().lower()
        if lower in {"", "n", "no", "f", "false", "off", "~", "null", "none"}:
            return False
        if lower in {"y", "yes", "t", "true", "on"}:
            return True
    return bool(value)


def _cast(type_name: str, value: Any) -> Any:
    """Cast one answer to the question's type, as Copier does."""
    if value is None and type_name not in {"json", "yaml"}:
        raise ValueError("no value")
    if type_name == "bool":
        return _cast_to_bool(value)
    if type_name == "int":
        return int(value)
    if type_name == "float":
        return float(value)
    if type_name in {"str", "path"}:
        if isinstance(value, str | int | float):
            return str(value)
        raise ValueError(f"not a string: {value!r}")
    if type_name == "json":
        return json.loads(value) if isinstance(value, str) else value
    if type_name == "yaml":
        return yaml.safe_load(value) if isinstance(value, str) else value
    raise VariantError(f"unsupported question type {type_name!r}")


class RenderError(Exception):
    pass


class _AnswerError(Exception):
    pass


_REMEMBERED_MAX: Final = 200_000
"""Rendered values and asked questions remembered per template (then forgotten at once): a
bound on memory."""


def _fresh(value: Any) -> Any:
    """A copy of a remembered value that callers may change without changing it."""
    if isinstance(value, list):
        return [_fresh(item) for item in value]
    if isinstance(value, dict):
        return {key: _fresh(item) for key, item in value.items()}
    return value


def value_key(value: Any) -> Hashable:
    """A key equal for two context values exactly when Jinja renders them alike (type-exact:
    True and 1 render differently)."""
    if isinstance(value, list | tuple):
        return (type(value).__name__, tuple(value_key(item) for item in value))
    if isinstance(value, dict):
        return ("dict", tuple((key, value_key(item)) for key, item in value.items()))
    return (type(value).__name__, value)


class _Env:
    """Copier's Jinja environment for question values, with a cache of compiled templates."""

    def __init__(self, envops: Mapping[str, Any]) -> None:
        options = dict(envops)
        options.setdefault("keep_trailing_newline", True)
        undefined = options.get("undefined")
        if isinstance(undefined, str):
            if undefined not in _UNDEFINED_CLASSES:
                raise VariantError(f"unsupported _envops.undefined value {undefined!r}")
            options["undefined"] = _UNDEFINED_CLASSES[undefined]
        try:
            self.env = SandboxedEnvironment(extensions=list(_EXTENSIONS), **options)
        except (TypeError, ValueError, ImportError) as error:
            raise VariantError(
                f"cannot build the Jinja environment from _envops: {error}"
            ) from error
        self._compiled: dict[str, jinja2.Template] = {}
        self._reads: dict[str, tuple[str, ...] | None] = {}
        self._rendered: dict[Hashable, str | RenderError] = {}

    def render(self, source: str, context: Mapping[str, Any], where: str) -> str:
        """Render `source`; the result is remembered for the values of the names it reads.

        A variant set evaluates the same `when`, default and validator with the same few values
        thousands of times (every subset of the features for each database and auth).
        """
        if source not in self._reads:
            names = self.names(source)
            self._reads[source] = None if names is None else tuple(sorted(names))
        reads = self._reads[source]
        try:
            key: Hashable = (
                source,
                where,
                tuple(value_key(context.get(name, MISSING)) for name in reads or ()),
            )
            hash(key)
        except TypeError:  # a value that cannot be a key: render every time
            key = None
        if reads is None or key is None:
            return self._render(source, context, where)
        found = self._rendered.get(key)
        if found is None:
            try:
                found = self._render(source, context, where)
            except RenderError as error:
                found = error
            if len(self._rendered) >= _REMEMBERED_MAX:
                self._rendered.clear()
            self._rendered[key] = found
        if isinstance(found, RenderError):
            raise RenderError(str(found)) from found.__cause__
        return found

    def _render(self, source: str, context: Mapping[str, Any], where: str) -> str:
        try:
            template = self._compiled.get(source)
            if template is None:
                template = self._compiled[source] = self.env.from_string(source)
            return template.render(dict(context))
        except Exception as error:
            raise RenderError(f"{where}: {type(error).__name__}: {error}") from error

    def names(self, value: Any) -> set[str] | None:
        """The context names that rendering the raw `value` reads; None when it does not parse."""
        if isinstance(value, list):
            found: set[str] = set()
            for item in value:
                names = self.names(item)
                if names is None:
                    return None
                found |= names
            return found
        if not isinstance(value, str):
            return set()
        try:
            return jinja2.meta.find_undeclared_variables(self.env.parse(value))
        except jinja2.TemplateSyntaxError:
            return None

    def render_value(self, value: Any, context: Mapping[str, Any], where: str) -> Any:
        """Render a raw value like Copier: strings are templates, lists item by item."""
        if isinstance(value, str):
            return self.render(value, context, where)
        if isinstance(value, list):
            return [self.render_value(item, context, where) for item in value]
        return value


# ---------------------------------------------------------------------------------------------
# The template: questions plus the evaluation of one question at a time
# ---------------------------------------------------------------------------------------------


@dataclass
class Issue:
    question: str
    message: str
    fatal: bool = False
    """True when no value could be computed at all (not merely an invalid one)."""


@dataclass
class _Step:
    asked: bool
    value: Any
    issues: list[Issue]


@dataclass
class Walk:
    resolved: dict[str, Any]
    issues: list[Issue]
    dead: list[str]
    """Questions that were answered but not asked (their `when` is false)."""
    values: dict[str, Any] = field(default_factory=dict)
    """Every question's value as Copier's templates see it: the asked answers, the defaults of
    questions not asked, and the computed values (`when: false`, such as `redis`)."""


def _named(question: str, message: str) -> str:
    message = message.strip()
    return message if question in message else f"{question}: {message}"


class Template:
    def __init__(self, path: Path) -> None:
        config_path = _config_path(path)
        data = _read_config(config_path)
        self.path = path
        envops = data.get("_envops") or {}
        if not isinstance(envops, dict):
            raise VariantError(f"{config_path}: _envops must be a mapping")
        self.env = _Env(envops)
        self.base_context: dict[str, Any] = {
            "_copier_operation": "copy",
            "_copier_python": sys.executable,
        }
        self.questions = [
            _question(name, details, self.base_context, self.env)
            for name, details in data.items()
            if not str(name).startswith("_")
        ]
        self.by_name = {q.name: q for q in self.questions}
        self._reads: dict[str, tuple[str, ...] | None] = {}
        self._asked: dict[Hashable, _Step] = {}
        # The variant sets computed so far (`all`, the covering sets), by name: for as long as
        # this copier.yml is unchanged (load_template), each is computed once.
        self.sets: dict[str, list[dict[str, Any]]] = {}

    # -- one question ----------------------------------------------------------------------

    def supplied_default(self, q: Question) -> Any:
        """The stand-in answer of a required question without default, else MISSING."""
        if not q.has_default and q.name in PLACEHOLDER_ANSWERS:
            return PLACEHOLDER_ANSWERS[q.name]
        return MISSING

    def when(self, q: Question, ctx: Mapping[str, Any]) -> bool:
        if q.computed:
            return False
        if isinstance(q.when, bool):
            return q.when
        return _cast_to_bool(self.env.render(q.when, ctx, f"{q.name}: when"))

    def default(self, q: Question, ctx: Mapping[str, Any]) -> Any:
        """The question's default, rendered and parsed; MISSING when it has none."""
        if not q.has_default:
            return MISSING
        rendered = self.env.render_value(q.default, ctx, f"{q.name}: default")
        return self.parse(q, rendered, ctx)

    def _quiet_default(self, q: Question, ctx: Mapping[str, Any]) -> Any:
        try:
            return self.default(q, ctx)
        except (RenderError, _AnswerError):
            return MISSING

    def _check_choice(self, q: Question, value: Any, ctx: Mapping[str, Any]) -> None:
        for choice, disabled in zip(q.choices, q.choice_validators, strict=True):
            if same_value(choice, value):
                message = disabled and self.env.render(disabled, ctx, f"{q.name}: choice").strip()
                if message:
                    raise _AnswerError(f"{q.name}: {value!r} is not available: {message}")
                return
        allowed = ", ".join(str(c) for c in q.choices)
        raise _AnswerError(f"{q.name}: {value!r} is not an allowed value (allowed: {allowed})")

    def parse(self, q: Question, value: Any, ctx: Mapping[str, Any]) -> Any:
        """Cast an answer to the question's type and check it against the choices."""
        try:
            if q.multiselect:
                items = yaml.safe_load(value) if isinstance(value, str) else value
                if items is None or isinstance(items, dict):
                    raise ValueError("expected a list")
                if not isinstance(items, list | tuple):
                    items = [items]
                cast = [_cast(q.type, item) for item in items]
            else:
                cast = _cast(q.type, value)
        except (TypeError, ValueError, yaml.YAMLError) as error:
            kind = f"a list of {q.type}" if q.multiselect else q.type
            raise _AnswerError(f"{q.name}: cannot read {value!r} as {kind} ({error})") from error
        try:
            if not q.multiselect:
                if q.choices:
                    self._check_choice(q, cast, ctx)
                return cast
            for item in cast:
                self._check_choice(q, item, ctx)
        except RenderError as error:
            raise _AnswerError(str(error)) from error
        return [c for c in q.choices if any(same_value(c, item) for item in cast)]

    def ask(self, q: Question, ctx: dict[str, Any], supplied: Any) -> _Step:
        """Evaluate a live question: answer or default, then choices and validator.

        The outcome is remembered for the answer and the values of the names that the
        question's Jinja reads: a variant set asks the same question the same way thousands of
        times (every subset of the features, for each database and auth).
        """
        key = self._ask_key(q, ctx, supplied)
        found = self._asked.get(key) if key is not None else None
        if found is None:
            found = self._ask(q, ctx, supplied)
            if key is not None:
                if len(self._asked) >= _REMEMBERED_MAX:
                    self._asked.clear()
                self._asked[key] = found
        elif found.value is not MISSING:
            ctx[q.name] = _fresh(found.value)
        return _Step(found.asked, _fresh(found.value), list(found.issues))

    def reads(self, q: Question) -> tuple[str, ...] | None:
        """The names that `q`'s Jinja (when, default, validator, choices) reads from the
        context, sorted; None when some of it does not parse."""
        if q.name not in self._reads:
            names: set[str] | None = set()
            for source in (q.when, q.default, q.validator, *q.choice_validators):
                found = self.env.names(source)
                names = None if found is None or names is None else names | found
            self._reads[q.name] = None if names is None else tuple(sorted(names))
        return self._reads[q.name]

    def _ask_key(self, q: Question, ctx: Mapping[str, Any], supplied: Any) -> Hashable | None:
        reads = self.reads(q)
        if reads is None:
            return None
        try:
            key = (
                q.name,
                value_key(supplied),
                tuple(value_key(ctx.get(name, MISSING)) for name in reads),
            )
            hash(key)
        except TypeError:  # an answer or value that cannot be a key: ask every time
            return None
        return key

    def _ask(self, q: Question, ctx: dict[str, Any], supplied: Any) -> _Step:
        if supplied is MISSING:
            if not q.has_default:
                message = f"{q.name}: required (it has no default); give it an answer"
                return _Step(True, MISSING, [Issue(q.name, message, fatal=True)])
            try:
                supplied = self.env.render_value(q.default, ctx, f"{q.name}: default")
            except RenderError as error:
                return _Step(True, MISSING, [Issue(q.name, str(error), fatal=True)])
        issues: list[Issue] = []
        try:
            value = self.parse(q, supplied, ctx)
        except _AnswerError as error:
            issues.append(Issue(q.name, str(error)))
            value = supplied
        ctx[q.name] = value
        if q.validator and not issues:
            try:
                message = self.env.render(q.validator, ctx, f"{q.name}: validator").strip()
            except RenderError as error:
                message = str(error)
            if message:
                issues.append(Issue(q.name, _named(q.name, message)))
        return _Step(True, value, issues)

    def skip(self, q: Question, ctx: dict[str, Any]) -> None:
        """A question that is not asked: its default still joins the context, like in Copier."""
        value = self._quiet_default(q, ctx)
        if value is not MISSING:
            ctx[q.name] = value

    def step(self, q: Question, ctx: dict[str, Any], supplied: Any) -> _Step:
        try:
            alive = self.when(q, ctx)
        except RenderError as error:
            return _Step(False, MISSING, [Issue(q.name, str(error), fatal=True)])
        if not alive:
            self.skip(q, ctx)
            return _Step(False, MISSING, [])
        return self.ask(q, ctx, supplied)

    # -- a whole answer set ------------------------------------------------------------------

    def walk(self, answers: Mapping[str, Any]) -> Walk:
        ctx = dict(self.base_context)
        resolved: dict[str, Any] = {}
        issues: list[Issue] = []
        dead: list[str] = []
        for q in self.questions:
            supplied = answers.get(q.name, self.supplied_default(q))
            step = self.step(q, ctx, supplied)
            issues.extend(step.issues)
            if step.asked and step.value is not MISSING:
                resolved[q.name] = step.value
            elif not (step.asked or step.issues or q.computed) and q.name in answers:
                dead.append(q.name)
        values = {name: value for name, value in ctx.items() if name in self.by_name}
        return Walk(resolved, issues, dead, values)

    def code_questions(self) -> list[Question]:
        return [q for q in self.questions if q.name in CODE_QUESTIONS and not q.computed]


def same_value(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b if isinstance(a, bool) or isinstance(b, bool) else a == b


@lru_cache(maxsize=32)
def _load_cached(path: str, stamp: tuple[int, int]) -> Template:
    return Template(Path(path))


def load_template(template: Path) -> Template:
    config = _config_path(template)
    stat = config.stat()
    return _load_cached(str(Path(template).resolve()), (stat.st_mtime_ns, stat.st_size))


# ---------------------------------------------------------------------------------------------
# Public answer functions
# ---------------------------------------------------------------------------------------------


def resolve(template: Path, answers: Mapping[str, Any]) -> dict[str, Any]:
    """Fill in defaults, drop answers of questions not asked; every asked question, in order.

    Values are cast to their question's type (multiselect lists in choice order). Invalid values
    are kept as given (see `validate`); raises `VariantError` only when a value cannot be computed.
    """
    walk = load_template(Path(template)).walk(answers)
    fatal = [issue.message for issue in walk.issues if issue.fatal]
    if fatal:
        raise VariantError("; ".join(fatal))
    return walk.resolved


def default_answers(template: Path) -> dict[str, Any]:
    """The answers of the all-defaults variant (for `variant_id` and `reproduce_command`)."""
    return resolve(template, {})


def closest_hint(name: str, asked: Sequence[str]) -> str:
    """`did you mean 'docker'?` for an unknown question `name`, else the list of questions."""
    close = difflib.get_close_matches(name, asked, n=1)
    return f"did you mean {close[0]!r}?" if close else f"questions: {', '.join(asked)}"


def not_asked(tpl: Template, name: str, walk: Walk, answer: Any) -> str:
    """Why the answer to `name` is refused when its `when` rule is false with the answers given:
    the rule, and what the question's own validator says of that answer, when it says something
    (Copier runs it for such an answer too: `kubernetes needs docker: ...`)."""
    question = tpl.by_name[name]
    reason = ""
    if question.validator:
        try:
            reason = tpl.env.render(
                question.validator, {**walk.values, name: answer}, f"{name}: validator"
            ).strip()
        except RenderError:
            reason = ""  # the answer is refused anyway; the `when` rule says why
    fix = f": {reason}" if reason else "; drop it or change the answers it depends on"
    return f"{name}: not asked with these answers (when: {question.when}){fix}"


def validate_walk(tpl: Template, answers: Mapping[str, Any]) -> tuple[list[str], Walk]:
    errors: list[str] = []
    asked = [q.name for q in tpl.questions if not q.computed]
    for name in answers:
        question = tpl.by_name.get(name)
        if question is None:
            errors.append(f"{name}: unknown question ({closest_hint(name, asked)})")
        elif question.computed:
            errors.append(f"{name}: a computed value (when: false), not a question to answer")
    walk = tpl.walk(answers)
    errors.extend(not_asked(tpl, name, walk, answers[name]) for name in walk.dead)
    errors.extend(issue.message for issue in walk.issues)
    return errors, walk


def validate(template: Path, answers: Mapping[str, Any]) -> list[str]:
    """Every problem with `answers`, each message naming its question; empty when valid."""
    return validate_walk(load_template(Path(template)), answers)[0]
