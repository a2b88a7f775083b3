"""The variant model: which answer sets of the template backforge renders and checks.

A *variant* is one full set of answers to the template's questions. Copier's `copier.yml` is the
single source of truth for the questions, their choices, defaults, `when` rules and validators:
this module reads it and evaluates its Jinja exactly as Copier does (sandboxed environment, the
Ansible core filters, the template's `_envops`, Copier's truthiness rules for `when`). Python names
only two things: the code-affecting questions (`CODE_QUESTIONS`) and the named presets (`PRESETS`).

Variant sets (`select`):

- ``all``: every combination of the code questions' values that Copier accepts;
- ``pairwise``: a small covering array in which every feasible pair of values of any two
  questions (each multiselect choice counts as its own on/off question) appears;
- ``presets`` / ``preset:NAME``: the named presets, trimmed to the current questions;
- ``sample:N[:SEED]``: N variants drawn from ``all`` deterministically;
- explicit answers: ``database=mysql,auth=jwt,features=[cache,jobs]`` (several separated by ``;``).
"""

from __future__ import annotations

import contextlib
import difflib
import hashlib
import itertools
import json
import random
import shlex
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from functools import lru_cache
from pathlib import Path
from typing import Any, Final, TypeVar

import jinja2
import yaml
from jinja2.sandbox import SandboxedEnvironment

__all__ = [
    "ALL_CHOICES",
    "CODE_QUESTIONS",
    "PLACEHOLDER_ANSWERS",
    "PRESETS",
    "Question",
    "VariantError",
    "default_answers",
    "load_questions",
    "parse_answers",
    "parse_shard",
    "reproduce_command",
    "resolve",
    "select",
    "shard",
    "validate",
    "variant_id",
]

CODE_QUESTIONS: Final = ("database", "auth", "multi_tenant", "features")
"""Questions whose answers change the rendered code (those missing from copier.yml are ignored)."""

PLACEHOLDER_ANSWERS: Final[Mapping[str, Any]] = {"project_name": "Forge App"}
"""Answers used for required questions without a default, when no answer is given."""


class _AllChoices(Enum):
    ALL = "all"


ALL_CHOICES: Final = _AllChoices.ALL
"""Preset value meaning "every choice of this multiselect question that copier.yml offers"."""

PRESETS: Final[Mapping[str, Mapping[str, Any]]] = {
    "minimal": {
        "database": "sqlite",
        "auth": "none",
        "features": [],
        "ci": "none",
        "docker": False,
    },
    "default": {},
    "saas": {
        "database": "postgresql",
        "auth": "jwt",
        "multi_tenant": True,
        "features": ALL_CHOICES,
    },
}
"""Named variants. Answers that the current copier.yml does not offer are dropped when used."""

_SET_SYNTAX: Final = (
    "all, pairwise, presets, preset:NAME, sample:N[:SEED] or answers such as "
    "'database=mysql,auth=jwt,features=[cache,jobs]' (several separated by ';')"
)
_CONFIG_FILES: Final = ("copier.yml", "copier.yaml")
_UNDEFINED_CLASSES: Final[Mapping[str, type[jinja2.Undefined]]] = {
    "jinja2.Undefined": jinja2.Undefined,
    "jinja2.StrictUndefined": jinja2.StrictUndefined,
}
_EXTENSIONS: Final = ("jinja2_ansible_filters.AnsibleCoreFiltersExtension",)
_T = TypeVar("_T")


class VariantError(ValueError):
    """A variant set specification, a preset or an answer set that Copier would not accept."""


class _Missing(Enum):
    MISSING = "MISSING"


_MISSING: Final = _Missing.MISSING


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
    for name in _CONFIG_FILES:
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
    name = type(details.get("default", _MISSING)).__name__
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
        except (_RenderError, yaml.YAMLError) as error:
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
    return list(_load(Path(template)).questions)


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


class _RenderError(Exception):
    pass


class _AnswerError(Exception):
    pass


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

    def render(self, source: str, context: Mapping[str, Any], where: str) -> str:
        try:
            template = self._compiled.get(source)
            if template is None:
                template = self._compiled[source] = self.env.from_string(source)
            return template.render(dict(context))
        except Exception as error:
            raise _RenderError(f"{where}: {type(error).__name__}: {error}") from error

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
class _Issue:
    question: str
    message: str
    fatal: bool = False
    """True when no value could be computed at all (not merely an invalid one)."""


@dataclass
class _Step:
    asked: bool
    value: Any
    issues: list[_Issue]


@dataclass
class _Walk:
    resolved: dict[str, Any]
    issues: list[_Issue]
    dead: list[str]
    """Questions that were answered but not asked (their `when` is false)."""


def _named(question: str, message: str) -> str:
    message = message.strip()
    return message if question in message else f"{question}: {message}"


class _Template:
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

    # -- one question ----------------------------------------------------------------------

    def supplied_default(self, q: Question) -> Any:
        """The stand-in answer of a required question without default, else MISSING."""
        if not q.has_default and q.name in PLACEHOLDER_ANSWERS:
            return PLACEHOLDER_ANSWERS[q.name]
        return _MISSING

    def when(self, q: Question, ctx: Mapping[str, Any]) -> bool:
        if q.computed:
            return False
        if isinstance(q.when, bool):
            return q.when
        return _cast_to_bool(self.env.render(q.when, ctx, f"{q.name}: when"))

    def default(self, q: Question, ctx: Mapping[str, Any]) -> Any:
        """The question's default, rendered and parsed; MISSING when it has none."""
        if not q.has_default:
            return _MISSING
        rendered = self.env.render_value(q.default, ctx, f"{q.name}: default")
        return self.parse(q, rendered, ctx)

    def _quiet_default(self, q: Question, ctx: Mapping[str, Any]) -> Any:
        try:
            return self.default(q, ctx)
        except (_RenderError, _AnswerError):
            return _MISSING

    def _check_choice(self, q: Question, value: Any, ctx: Mapping[str, Any]) -> None:
        for choice, disabled in zip(q.choices, q.choice_validators, strict=True):
            if _same(choice, value):
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
        except _RenderError as error:
            raise _AnswerError(str(error)) from error
        return [c for c in q.choices if any(_same(c, item) for item in cast)]

    def ask(self, q: Question, ctx: dict[str, Any], supplied: Any) -> _Step:
        """Evaluate a live question: answer or default, then choices and validator."""
        if supplied is _MISSING:
            if not q.has_default:
                message = f"{q.name}: required (it has no default); give it an answer"
                return _Step(True, _MISSING, [_Issue(q.name, message, fatal=True)])
            try:
                supplied = self.env.render_value(q.default, ctx, f"{q.name}: default")
            except _RenderError as error:
                return _Step(True, _MISSING, [_Issue(q.name, str(error), fatal=True)])
        issues: list[_Issue] = []
        try:
            value = self.parse(q, supplied, ctx)
        except _AnswerError as error:
            issues.append(_Issue(q.name, str(error)))
            value = supplied
        ctx[q.name] = value
        if q.validator and not issues:
            try:
                message = self.env.render(q.validator, ctx, f"{q.name}: validator").strip()
            except _RenderError as error:
                message = str(error)
            if message:
                issues.append(_Issue(q.name, _named(q.name, message)))
        return _Step(True, value, issues)

    def skip(self, q: Question, ctx: dict[str, Any]) -> None:
        """A question that is not asked: its default still joins the context, like in Copier."""
        value = self._quiet_default(q, ctx)
        if value is not _MISSING:
            ctx[q.name] = value

    def step(self, q: Question, ctx: dict[str, Any], supplied: Any) -> _Step:
        try:
            alive = self.when(q, ctx)
        except _RenderError as error:
            return _Step(False, _MISSING, [_Issue(q.name, str(error), fatal=True)])
        if not alive:
            self.skip(q, ctx)
            return _Step(False, _MISSING, [])
        return self.ask(q, ctx, supplied)

    # -- a whole answer set ------------------------------------------------------------------

    def walk(self, answers: Mapping[str, Any]) -> _Walk:
        ctx = dict(self.base_context)
        resolved: dict[str, Any] = {}
        issues: list[_Issue] = []
        dead: list[str] = []
        for q in self.questions:
            supplied = answers.get(q.name, self.supplied_default(q))
            step = self.step(q, ctx, supplied)
            issues.extend(step.issues)
            if step.asked and step.value is not _MISSING:
                resolved[q.name] = step.value
            elif not (step.asked or step.issues or q.computed) and q.name in answers:
                dead.append(q.name)
        return _Walk(resolved, issues, dead)

    def code_questions(self) -> list[Question]:
        return [q for q in self.questions if q.name in CODE_QUESTIONS and not q.computed]


def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b if isinstance(a, bool) or isinstance(b, bool) else a == b


@lru_cache(maxsize=32)
def _load_cached(path: str, stamp: tuple[int, int]) -> _Template:
    return _Template(Path(path))


def _load(template: Path) -> _Template:
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
    walk = _load(Path(template)).walk(answers)
    fatal = [issue.message for issue in walk.issues if issue.fatal]
    if fatal:
        raise VariantError("; ".join(fatal))
    return walk.resolved


def default_answers(template: Path) -> dict[str, Any]:
    """The answers of the all-defaults variant (for `variant_id` and `reproduce_command`)."""
    return resolve(template, {})


def _validate(tpl: _Template, answers: Mapping[str, Any]) -> tuple[list[str], _Walk]:
    errors: list[str] = []
    asked = [q.name for q in tpl.questions if not q.computed]
    for name in answers:
        question = tpl.by_name.get(name)
        if question is None:
            close = difflib.get_close_matches(name, asked, n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"questions: {', '.join(asked)}"
            errors.append(f"{name}: unknown question ({hint})")
        elif question.computed:
            errors.append(f"{name}: a computed value (when: false), not a question to answer")
    walk = tpl.walk(answers)
    for name in walk.dead:
        rule = tpl.by_name[name].when
        errors.append(
            f"{name}: not asked with these answers (when: {rule}); "
            "drop it or change the answers it depends on"
        )
    errors.extend(issue.message for issue in walk.issues)
    return errors, walk


def validate(template: Path, answers: Mapping[str, Any]) -> list[str]:
    """Every problem with `answers`, each message naming its question; empty when valid."""
    return _validate(_load(Path(template)), answers)[0]


# ---------------------------------------------------------------------------------------------
# Variant sets
# ---------------------------------------------------------------------------------------------


def _freeze(value: Any) -> Any:
    if isinstance(value, Mapping):
        return tuple((k, _freeze(v)) for k, v in value.items())
    if isinstance(value, list | tuple):
        return tuple(_freeze(v) for v in value)
    return (type(value).__name__, value)


def _unique(variants: list[dict[str, Any]]) -> list[dict[str, Any]]:
    seen: set[Any] = set()
    out = []
    for variant in variants:
        key = _freeze(variant)
        if key not in seen:
            seen.add(key)
            out.append(variant)
    return out


def _subsets(values: Sequence[Any]) -> list[list[Any]]:
    """Every subset, smallest first, each in the order of `values`."""
    return [
        list(combo)
        for size in range(len(values) + 1)
        for combo in itertools.combinations(values, size)
    ]


def _code_values(q: Question) -> list[Any]:
    if q.multiselect:
        return _subsets(q.choices)
    if q.choices:
        return list(q.choices)
    if q.type == "bool":
        return [False, True]
    return [_MISSING]


def _all(tpl: _Template) -> list[dict[str, Any]]:
    code = tpl.code_questions()
    variants = []
    first_issues: list[_Issue] = []
    for combo in itertools.product(*(_code_values(q) for q in code)):
        answers = {q.name: v for q, v in zip(code, combo, strict=True) if v is not _MISSING}
        walk = tpl.walk(answers)
        if walk.issues:
            first_issues = first_issues or walk.issues
            continue
        variants.append(walk.resolved)
    if not variants:
        detail = "; ".join(issue.message for issue in first_issues)
        raise VariantError(f"copier.yml admits no valid variant: {detail}")
    return _unique(variants)


# -- pairwise ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Factor:
    question: str
    choice: Any
    """The multiselect choice this on/off factor stands for, or MISSING for a whole question."""
    values: tuple[Any, ...]


_Pair = tuple[int, int, int, int]  # factor i, value index, factor j > i, value index


def _factors(tpl: _Template) -> list[_Factor]:
    factors: list[_Factor] = []
    for q in tpl.questions:
        if q.computed or not q.is_factor:
            continue
        if q.multiselect:
            factors.extend(_Factor(q.name, c, (True, False)) for c in q.choices)
        elif q.choices:
            factors.append(_Factor(q.name, _MISSING, tuple(q.choices)))
        else:
            factors.append(_Factor(q.name, _MISSING, (True, False)))
    return factors


def _factor_levels(factors: Sequence[_Factor], variant: Mapping[str, Any]) -> list[int | None]:
    """Each factor's value index in `variant`, None when its question is not asked."""
    levels: list[int | None] = []
    for factor in factors:
        if factor.question not in variant:
            levels.append(None)
            continue
        value = variant[factor.question]
        if factor.choice is not _MISSING:
            value = any(_same(factor.choice, item) for item in value)
        index = next((i for i, v in enumerate(factor.values) if _same(v, value)), None)
        levels.append(index)
    return levels


def _pairs_of(levels: Sequence[int | None]) -> set[_Pair]:
    """The pairs a variant covers, plus each value alone as (i, a, i, a) (one-factor sets)."""
    pairs: set[_Pair] = {(i, a, i, a) for i, a in enumerate(levels) if a is not None}
    for (i, a), (j, b) in itertools.combinations(enumerate(levels), 2):
        if a is not None and b is not None:
            pairs.add((i, a, j, b))
    return pairs


class _RowBuilder:
    """Depth-first construction of one valid variant that contains fixed factor values.

    Questions are walked in copier order (so `when` and validators see what Copier would show
    them); factor values are tried greedily, most newly covered pairs first. The search is
    exhaustive, so a failure proves that the fixed values cannot appear together.
    """

    def __init__(self, tpl: _Template, factors: Sequence[_Factor], uncovered: set[_Pair]) -> None:
        self.fixed: Mapping[int, int] = {}
        self.tpl = tpl
        self.factors = factors
        self.uncovered = uncovered
        self.by_question: dict[str, list[int]] = {}
        for index, factor in enumerate(factors):
            self.by_question.setdefault(factor.question, []).append(index)

    def build(self, fixed: Mapping[int, int]) -> dict[str, Any] | None:
        self.fixed = fixed
        return self._visit(0, dict(self.tpl.base_context), {}, {})

    def _levels(self, fid: int) -> list[int]:
        return list(range(len(self.factors[fid].values)))

    def _gain(self, factor: int, level: int, known: Mapping[int, int | None]) -> int:
        gain = 0
        for other, other_level in known.items():
            if other_level is None or other == factor:
                continue
            pair = (
                (factor, level, other, other_level)
                if factor < other
                else (other, other_level, factor, level)
            )
            gain += pair in self.uncovered
        return gain

    def _options(
        self, q: Question, fids: list[int], known: dict[int, int | None]
    ) -> Iterator[tuple[Any, Any]]:
        """(levels, answer) candidates for a factor question, most newly covered pairs first."""
        known = {**self.fixed, **known}
        if not q.multiselect:
            (fid,) = fids
            candidates = [self.fixed[fid]] if fid in self.fixed else self._levels(fid)
            for level in sorted(candidates, key=lambda lv: -self._gain(fid, lv, known)):
                yield level, self.factors[fid].values[level]
            return
        greedy: list[int] = []
        for fid in fids:
            if fid in self.fixed:
                level = self.fixed[fid]
            else:
                gains = [self._gain(fid, lv, known) for lv in (0, 1)]
                level = 0 if gains[0] >= gains[1] else 1
            greedy.append(level)
            known[fid] = level
        choices = [self.factors[fid].choice for fid in fids]
        allowed = [[self.fixed[fid]] if fid in self.fixed else [0, 1] for fid in fids]
        every: Iterator[tuple[int, ...]] = itertools.product(*allowed)
        for levels in itertools.chain([tuple(greedy)], every):
            yield levels, [c for c, lv in zip(choices, levels, strict=True) if lv == 0]

    def _visit(
        self,
        index: int,
        ctx: dict[str, Any],
        levels: dict[int, int | None],
        resolved: dict[str, Any],
    ) -> dict[str, Any] | None:
        questions = self.tpl.questions
        if index == len(questions):
            return resolved
        q = questions[index]
        fids = self.by_question.get(q.name)
        if not fids:
            ctx = dict(ctx)
            step = self.tpl.step(q, ctx, self.tpl.supplied_default(q))
            if step.issues:
                return None
            if step.asked:
                resolved = {**resolved, q.name: step.value}
            return self._visit(index + 1, ctx, levels, resolved)
        try:
            alive = self.tpl.when(q, ctx)
        except _RenderError:
            return None
        if not alive:
            if any(fid in self.fixed for fid in fids):
                return None
            ctx = dict(ctx)
            self.tpl.skip(q, ctx)
            return self._visit(index + 1, ctx, {**levels, **dict.fromkeys(fids)}, resolved)
        tried: set[Any] = set()
        for level, answer in self._options(q, fids, levels):
            key = level if isinstance(level, int) else tuple(level)
            if key in tried:
                continue
            tried.add(key)
            step_ctx = dict(ctx)
            step = self.tpl.ask(q, step_ctx, answer)
            if step.issues:
                continue
            chosen = dict(zip(fids, [level] if isinstance(level, int) else level, strict=True))
            found = self._visit(
                index + 1, step_ctx, {**levels, **chosen}, {**resolved, q.name: step.value}
            )
            if found is not None:
                return found
        return None


_SEED_CANDIDATES: Final = 16
"""Rows tried per step of the greedy pairwise construction (the best one is kept)."""


def _pair_targets(factors: Sequence[_Factor]) -> list[_Pair]:
    if len(factors) >= 2:
        return [
            (i, a, j, b)
            for i, j in itertools.combinations(range(len(factors)), 2)
            for a in range(len(factors[i].values))
            for b in range(len(factors[j].values))
        ]
    # A single factor (or none): cover each of its values.
    return [(0, a, 0, a) for a in range(len(factors[0].values))] if factors else []


def _pairwise(tpl: _Template) -> list[dict[str, Any]]:
    """A covering array, built greedily: each step keeps the best of a few candidate rows.

    A candidate row is seeded with one uncovered pair (one per pair of factors, so seeds spread
    over the questions); a seed that admits no valid row is proven infeasible and dropped.
    """
    factors = _factors(tpl)
    targets = _pair_targets(factors)
    uncovered = set(targets)
    builder = _RowBuilder(tpl, factors, uncovered)
    rows: list[tuple[dict[str, Any], set[_Pair]]] = []
    infeasible: set[_Pair] = set()
    while uncovered:
        seeds: dict[tuple[int, int], _Pair] = {}
        for target in sorted(uncovered):
            seeds.setdefault((target[0], target[2]), target)
            if len(seeds) == _SEED_CANDIDATES:
                break
        best: tuple[dict[str, Any], set[_Pair]] | None = None
        for i, a, j, b in seeds.values():
            row = builder.build({i: a, j: b})
            if row is None:
                uncovered.discard((i, a, j, b))
                infeasible.add((i, a, j, b))
                continue
            walk = tpl.walk(row)  # the canonical, fully checked form of the row
            if walk.issues:
                raise RuntimeError(f"pairwise row failed validation: {walk.issues}")
            pairs = _pairs_of(_factor_levels(factors, walk.resolved))
            if (i, a, j, b) not in pairs:
                raise RuntimeError(f"pairwise row {walk.resolved} misses its seed {(i, a, j, b)}")
            if best is None or len(pairs & uncovered) > len(best[1] & uncovered):
                best = (walk.resolved, pairs)
        if best is not None:
            rows.append(best)
            uncovered -= best[1]
    # Drop rows whose pairs the other rows cover too (latest first: early rows cover most).
    for index in range(len(rows) - 1, -1, -1):
        others = set().union(*(pairs for k, (_, pairs) in enumerate(rows) if k != index))
        if rows[index][1] <= others:
            del rows[index]
    variants = [row for row, _ in rows] or _all(tpl)[:1]
    covered: set[_Pair] = set()
    for variant in variants:
        covered |= _pairs_of(_factor_levels(factors, variant))
    missing = set(targets) - infeasible - covered
    if missing:
        raise RuntimeError(f"pairwise set misses {len(missing)} feasible pairs")
    return _unique(variants)


# -- presets -----------------------------------------------------------------------------------


def _preset(tpl: _Template, name: str) -> dict[str, Any]:
    if name not in PRESETS:
        raise VariantError(f"unknown preset {name!r}; presets: {', '.join(PRESETS)}")
    answers: dict[str, Any] = {}
    for key, value in PRESETS[name].items():
        q = tpl.by_name.get(key)
        if q is None or q.computed:
            continue
        if value is ALL_CHOICES:
            if not q.multiselect:
                continue
            value = list(q.choices)
        if q.multiselect:
            value = [v for v in value if any(_same(v, c) for c in q.choices)]
        elif q.choices and not any(_same(value, c) for c in q.choices):
            continue
        answers[key] = value
    while True:
        walk = tpl.walk(answers)
        culprits = [issue.question for issue in walk.issues if issue.question in answers]
        if not walk.issues:
            return walk.resolved
        if not culprits:
            detail = "; ".join(issue.message for issue in walk.issues)
            raise VariantError(f"preset {name!r} is invalid for this copier.yml: {detail}")
        for culprit in culprits:
            answers.pop(culprit, None)


# -- explicit answers --------------------------------------------------------------------------


def _split_top(text: str, separator: str) -> list[str]:
    """Split on `separator` outside brackets, braces, parentheses and quotes.

    A quote opens a quoted part only where a YAML value can start (after `=`, `,`, `;`, `[`,
    `{`, `:` or a space), so that apostrophes inside words (`O'Brien`) need no quoting.
    """
    parts: list[str] = []
    depth = 0
    quote = ""
    current: list[str] = []
    last = ""  # the last non-blank character before `char`
    for char in text:
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"" and last in ("", "=", ",", ";", "[", "{", ":"):
            quote = char
        elif char in "[{(":
            depth += 1
        elif char in "]})":
            depth -= 1
        elif char == separator and depth == 0:
            parts.append("".join(current))
            current = []
            last = ""
            continue
        current.append(char)
        last = last if char.isspace() else char
    if quote or depth:
        raise VariantError(f"unbalanced brackets or quotes in {text!r}")
    parts.append("".join(current))
    return parts


def parse_answers(spec: str) -> dict[str, Any]:
    """Parse `key=value,key=value` (values are YAML; brackets and quotes protect commas)."""
    answers: dict[str, Any] = {}
    for item in _split_top(spec, ","):
        if not item.strip():
            continue
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise VariantError(f"expected key=value, got {item.strip()!r} in {spec!r}")
        if key in answers:
            raise VariantError(f"{key}: answered twice in {spec!r}")
        try:
            answers[key] = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError as error:
            raise VariantError(f"{key}: value {raw.strip()!r} is not valid YAML") from error
    if not answers:
        raise VariantError(f"no answers in {spec!r}")
    return answers


def _explicit(tpl: _Template, spec: str) -> list[dict[str, Any]]:
    variants = []
    for part in _split_top(spec, ";"):
        if not part.strip():
            continue
        answers = parse_answers(part)
        errors, walk = _validate(tpl, answers)
        if errors:
            raise VariantError(f"invalid answers {part.strip()!r}: " + "; ".join(errors))
        variants.append(walk.resolved)
    if not variants:
        raise VariantError(f"no answers in {spec!r}")
    return variants


def _sample(tpl: _Template, spec: str) -> list[dict[str, Any]]:
    fields = spec.split(":")
    try:
        if len(fields) not in {2, 3}:
            raise ValueError
        count = int(fields[1])
        seed = int(fields[2]) if len(fields) == 3 else 0
    except ValueError:
        raise VariantError(f"invalid set {spec!r}: expected sample:N or sample:N:SEED") from None
    if count < 1:
        raise VariantError(f"invalid set {spec!r}: N must be at least 1")
    every = _all(tpl)
    rng = random.Random(seed)  # noqa: S311 - a reproducible draw, not cryptography
    picked = sorted(rng.sample(range(len(every)), min(count, len(every))))
    return [every[i] for i in picked]


def select(template: Path, spec: str) -> list[dict[str, Any]]:
    """The variants of a set: all, pairwise, presets, preset:NAME, sample:N[:SEED] or answers.

    Every variant is a full answers dict as `resolve` returns it; raises `VariantError`.
    `sample:N` with N larger than `all` returns all of `all`.
    """
    tpl = _load(Path(template))
    spec = spec.strip()
    if spec == "all":
        return _all(tpl)
    if spec == "pairwise":
        return _pairwise(tpl)
    if spec == "presets":
        return _unique([_preset(tpl, name) for name in PRESETS])
    if spec.startswith("preset:"):
        return [_preset(tpl, spec.removeprefix("preset:").strip())]
    if spec.startswith("sample:"):
        return _sample(tpl, spec)
    if "=" in spec:
        return _explicit(tpl, spec)
    raise VariantError(f"unknown variant set {spec!r}; expected {_SET_SYNTAX}")


# ---------------------------------------------------------------------------------------------
# Shards, ids and reproduce commands
# ---------------------------------------------------------------------------------------------


def parse_shard(text: str) -> tuple[int, int]:
    """Parse `I/N` (1 <= I <= N) as given to `--shard`."""
    index_text, sep, count_text = text.strip().partition("/")
    try:
        if not sep:
            raise ValueError
        index, count = int(index_text), int(count_text)
    except ValueError:
        raise VariantError(f"invalid shard {text!r}: expected I/N such as 2/4") from None
    if count < 1 or not 1 <= index <= count:
        raise VariantError(f"invalid shard {text!r}: need 1 <= I <= N, such as 2/4")
    return index, count


def shard(variants: Sequence[_T], index: int, count: int) -> list[_T]:
    """Shard `index` of `count` (1-based): every count-th variant, starting at position index."""
    if count < 1 or not 1 <= index <= count:
        raise VariantError(f"invalid shard {index}/{count}: need 1 <= I <= N")
    return list(variants[index - 1 :: count])


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


def _yaml_value(value: Any) -> str:
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
    local = any((Path(template) / name).is_file() for name in _CONFIG_FILES)
    passed = {key for key in answers if key in PLACEHOLDER_ANSWERS}
    if local:
        tpl = _load(Path(template))
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
            args += ["-d", f"{key}={_yaml_value(value)}"]
    return shlex.join(args)
