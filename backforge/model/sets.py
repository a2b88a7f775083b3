"""Variant sets: `all`, `pairwise`, `3wise`, presets, samples, explicit answers, and shards.

- ``all``: every combination of the code questions' values that Copier accepts;
- ``pairwise``: a small covering array in which every feasible pair of values of any two
  questions (each multiselect choice counts as its own on/off question, and a computed yes/no
  such as ``redis`` as a question of its own) appears;
- ``3wise``: the same with every feasible triple of values of any three questions;
- ``presets`` / ``preset:NAME``: the named presets, trimmed to the current questions;
- ``sample:N[:SEED]``: N variants drawn from ``all`` deterministically;
- explicit answers: ``database=mysql,auth=jwt,features=[cache,jobs]`` (several separated by ``;``).
"""

from __future__ import annotations

import itertools
import random
from collections import Counter
from collections.abc import Hashable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any, Final, TypeVar

import yaml

from backforge.model.questions import (
    MISSING,
    Issue,
    Question,
    RenderError,
    Template,
    VariantError,
    Walk,
    _fresh,
    load_template,
    same_value,
    validate_walk,
    value_key,
)


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
        "kubernetes": True,
    },
}
"""Named variants. Answers that the current copier.yml does not offer are dropped when used."""

_SET_SYNTAX: Final = (
    "all, pairwise, 3wise, presets, preset:NAME, sample:N[:SEED] or answers such as "
    "'database=mysql,auth=jwt,features=[cache,jobs]' (several separated by ';')"
)
_T = TypeVar("_T")


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
    return [MISSING]


def _all(tpl: Template) -> list[dict[str, Any]]:
    code = tpl.code_questions()
    variants = []
    first_issues: list[Issue] = []
    for combo in itertools.product(*(_code_values(q) for q in code)):
        answers = {q.name: v for q, v in zip(code, combo, strict=True) if v is not MISSING}
        walk = tpl.walk(answers)
        if walk.issues:
            first_issues = first_issues or walk.issues
            continue
        variants.append(walk.resolved)
    if not variants:
        detail = "; ".join(issue.message for issue in first_issues)
        raise VariantError(f"copier.yml admits no valid variant: {detail}")
    return _unique(variants)


# -- covering arrays: pairwise, 3wise ----------------------------------------------------------


@dataclass(frozen=True)
class _Factor:
    question: str
    choice: Any
    """The multiselect choice this on/off factor stands for, or MISSING for a whole question."""
    values: tuple[Any, ...]


_Tuple = tuple[tuple[int, int], ...]
"""Values of distinct factors, as (factor index, value index) in factor order."""

STRENGTHS: Final[Mapping[str, int]] = {"pairwise": 2, "3wise": 3}
"""The covering sets: every feasible tuple of this many factor values is in some variant."""


def _factors(tpl: Template) -> list[_Factor]:
    """The factors whose tuples a covering set covers: each question with a finite set of
    values, each choice of a multiselect, and each computed yes/no (`when: false`, such as
    `redis`): the code branches on those as much as on a question, and a combination such as
    "no feature that needs Redis" is not a tuple of questions."""
    factors: list[_Factor] = []
    for q in tpl.questions:
        if not q.is_factor or (q.computed and q.type != "bool"):
            continue
        if q.multiselect:
            factors.extend(_Factor(q.name, c, (True, False)) for c in q.choices)
        elif q.choices:
            factors.append(_Factor(q.name, MISSING, tuple(q.choices)))
        else:
            factors.append(_Factor(q.name, MISSING, (True, False)))
    return factors


def _factor_levels(factors: Sequence[_Factor], variant: Mapping[str, Any]) -> list[int | None]:
    """Each factor's value index in `variant`, None when its question is not asked."""
    levels: list[int | None] = []
    for factor in factors:
        if factor.question not in variant:
            levels.append(None)
            continue
        value = variant[factor.question]
        if factor.choice is not MISSING:
            value = any(same_value(factor.choice, item) for item in value)
        index = next((i for i, v in enumerate(factor.values) if same_value(v, value)), None)
        levels.append(index)
    return levels


def _levels_of(tpl: Template, walk: Walk, factors: Sequence[_Factor]) -> list[int | None]:
    """`_factor_levels` of a walked variant: its answers, and its computed factors' values."""
    computed = {f.question for f in factors if tpl.by_name[f.question].computed}
    seen = {
        **walk.resolved,
        **{name: walk.values[name] for name in computed if name in walk.values},
    }
    return _factor_levels(factors, seen)


def _tuples_of(levels: Sequence[int | None], strength: int) -> set[_Tuple]:
    """The tuples of `strength` factor values that a variant with these levels contains."""
    known = [(i, a) for i, a in enumerate(levels) if a is not None]
    return set(itertools.combinations(known, strength))


def _contains(levels: Sequence[int | None], part: _Tuple) -> bool:
    return all(levels[factor] == level for factor, level in part)


class _RowBuilder:
    """Depth-first construction of one valid variant that contains fixed factor values.

    Questions are walked in copier order (so `when` and validators see what Copier would show
    them); factor values are tried greedily, most newly covered tuples first. The search is
    exhaustive, so a failure proves that the fixed values cannot appear together.
    """

    def __init__(
        self, tpl: Template, factors: Sequence[_Factor], uncovered: set[_Tuple], strength: int
    ) -> None:
        self.fixed: Mapping[int, int] = {}
        self.tpl = tpl
        self.factors = factors
        self.uncovered = uncovered
        self.impossible: dict[tuple[int, int], list[_Tuple]] = {}
        """Tuples proven infeasible, by each of their values: the greedy choice avoids them."""
        self.strength = strength
        self.by_question: dict[str, list[int]] = {}
        for index, factor in enumerate(factors):
            self.by_question.setdefault(factor.question, []).append(index)
        self.early = self._early_checks()
        position = {q.name: i for i, q in enumerate(tpl.questions)}
        self.factor_position = [position[factor.question] for factor in factors]
        self.reads_after = self._reads_after()
        self.failed: set[Hashable] = set()
        """Subtrees proven to admit no row: (index, fixed values from there on, what they read)."""

    def _reads_after(self) -> list[tuple[str, ...] | None]:
        """Per question index, the names whose values decide whether the questions from there
        on admit a row: those read by every question that can reject a value (asked ones) or
        that is a factor, and by the computed values these read. None: unknown (no memo)."""
        questions = self.tpl.questions
        factor_questions = {factor.question for factor in self.factors}
        reads = [self.tpl.reads(q) for q in questions]
        relevant = [not q.computed or q.name in factor_questions for q in questions]
        changed = True
        while changed:
            read = {n for i, names in enumerate(reads) if relevant[i] for n in names or ()}
            changed = False
            for i, q in enumerate(questions):
                if not relevant[i] and q.name in read:
                    relevant[i] = changed = True
        out: list[tuple[str, ...] | None] = [()] * (len(questions) + 1)
        names: set[str] | None = set()
        for i in range(len(questions) - 1, -1, -1):
            read_here = reads[i]
            if relevant[i]:
                names = None if names is None or read_here is None else names | set(read_here)
            out[i] = None if names is None else tuple(sorted(names))
        return out

    def _failure_key(self, index: int, ctx: Mapping[str, Any]) -> Hashable | None:
        reads = self.reads_after[index]
        if reads is None:
            return None
        later = tuple(
            sorted(
                (fid, level)
                for fid, level in self.fixed.items()
                if self.factor_position[fid] >= index
            )
        )
        try:
            key = (index, later, tuple(value_key(ctx.get(name, MISSING)) for name in reads))
            hash(key)
        except TypeError:
            return None
        return key

    def _early_checks(self) -> dict[int, list[tuple[int, list[Question]]]]:
        """Where each computed factor's value is known before its turn, and how to compute it.

        Its value follows from the answers its default reads (through other computed values, such
        as `redis` from `redis_features` from `features`): once those are answered, a fixed value
        that the row cannot have ends the search there, instead of after every later question's
        values were tried. Keyed by question index; each entry is the factor and the computed
        questions to evaluate, in copier order.
        """
        questions = self.tpl.questions
        position = {q.name: i for i, q in enumerate(questions)}
        checks: dict[int, list[tuple[int, list[Question]]]] = {}
        for fid, factor in enumerate(self.factors):
            q = self.tpl.by_name[factor.question]
            if not q.computed:
                continue
            chain: set[str] = set()
            pending = [q.name]
            ready = 0
            while pending and ready <= position[q.name]:
                name = pending.pop()
                if name in chain:
                    continue
                chain.add(name)
                if position[name] > position[q.name]:  # read before it is computed: undefined
                    ready = len(questions)
                names = self.tpl.env.names(self.tpl.by_name[name].default)
                if names is None:
                    ready = len(questions)
                    break
                for dep in names & position.keys():
                    if self.tpl.by_name[dep].computed:
                        pending.append(dep)
                    else:
                        ready = max(ready, position[dep] + 1)
            if ready < position[q.name]:
                steps = [other for other in questions if other.name in chain]
                checks.setdefault(ready, []).append((fid, steps))
        return checks

    def _impossible_early(self, index: int, ctx: Mapping[str, Any]) -> bool:
        """True when a fixed computed factor already has another value than the fixed one."""
        for fid, steps in self.early.get(index, ()):
            if fid not in self.fixed:
                continue
            values = dict(ctx)
            for step in steps:
                self.tpl.skip(step, values)
            name = self.factors[fid].question
            level = _factor_levels([self.factors[fid]], {name: values.get(name, MISSING)})[0]
            if level != self.fixed[fid]:
                return True
        return False

    def build(self, fixed: Mapping[int, int]) -> dict[str, Any] | None:
        self.fixed = fixed
        return self._visit(0, dict(self.tpl.base_context), {}, {})

    def _levels(self, fid: int) -> list[int]:
        return list(range(len(self.factors[fid].values)))

    def forbid(self, core: _Tuple) -> None:
        for value in core:
            self.impossible.setdefault(value, []).append(core)

    def _gain(self, factor: int, level: int, known: Mapping[int, int | None]) -> int:
        """How many uncovered tuples `level` for `factor` completes with the values known;
        -1 when it completes a tuple proven infeasible (such as a feature needing Redis with
        redis fixed to false)."""
        for core in self.impossible.get((factor, level), ()):
            if all(f == factor or known.get(f) == lv for f, lv in core):
                return -1
        others = sorted((f, lv) for f, lv in known.items() if lv is not None and f != factor)
        gain = 0
        for combo in itertools.combinations(others, self.strength - 1):
            gain += tuple(sorted((*combo, (factor, level)))) in self.uncovered
        return gain

    def _options(
        self, q: Question, fids: list[int], known: dict[int, int | None]
    ) -> Iterator[tuple[Any, Any]]:
        """(levels, answer) candidates for a factor question, most newly covered tuples first."""
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
        """A row from question `index` on, or None when none exists (remembered: a search that
        fails for one database fails alike for the others unless a later question reads it)."""
        key = self._failure_key(index, ctx)
        if key is not None and key in self.failed:
            return None
        found = self._search(index, ctx, levels, resolved)
        if found is None and key is not None:
            self.failed.add(key)
        return found

    def _search(
        self,
        index: int,
        ctx: dict[str, Any],
        levels: dict[int, int | None],
        resolved: dict[str, Any],
    ) -> dict[str, Any] | None:
        questions = self.tpl.questions
        if self._impossible_early(index, ctx):
            return None
        if index == len(questions):
            return resolved
        q = questions[index]
        fids = self.by_question.get(q.name)
        if fids and q.computed:  # a computed factor: its value follows from the answers so far
            ctx = dict(ctx)
            self.tpl.skip(q, ctx)
            (fid,) = fids
            level = _factor_levels([self.factors[fid]], {q.name: ctx.get(q.name, MISSING)})[0]
            if fid in self.fixed and self.fixed[fid] != level:
                return None
            return self._visit(index + 1, ctx, {**levels, fid: level}, resolved)
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
        except RenderError:
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
"""Rows tried per step of the greedy construction of a covering set (the best one is kept)."""


def _targets(factors: Sequence[_Factor], strength: int) -> list[_Tuple]:
    """Every tuple of values of `strength` distinct factors."""
    return [
        tuple(zip(combo, values, strict=True))
        for combo in itertools.combinations(range(len(factors)), strength)
        for values in itertools.product(*(range(len(factors[i].values)) for i in combo))
    ]


class _Covering:
    """The greedy construction of a covering array of one strength.

    Each step keeps the best of a few candidate rows, each seeded with one uncovered tuple (one
    per combination of factors, so seeds spread over the questions). A seed that admits no valid
    row is proven infeasible; so is, by the same search, the smallest part of it that admits none
    (such as multi_tenant with auth=none): every tuple containing that part is dropped unsearched,
    so each impossibility costs one search, not one per tuple that contains it.
    """

    def __init__(self, tpl: Template, strength: int) -> None:
        self.tpl = tpl
        self.factors = _factors(tpl)
        self.strength = min(strength, len(self.factors))
        self.targets = _targets(self.factors, self.strength)
        self.uncovered = set(self.targets)
        self.builder = _RowBuilder(tpl, self.factors, self.uncovered, self.strength)
        self.witnesses: list[list[int | None]] = []
        """The factor levels of every valid row built: each proves its parts feasible."""
        self.impossible: set[_Tuple] = set()

    def _row(self, seed: _Tuple) -> tuple[dict[str, Any], list[int | None]] | None:
        row = self.builder.build(dict(seed))
        if row is None:
            return None
        walk = self.tpl.walk(row)  # the canonical, fully checked form of the row
        if walk.issues:
            raise RuntimeError(f"covering row failed validation: {walk.issues}")
        levels = _levels_of(self.tpl, walk, self.factors)
        if not _contains(levels, seed):
            raise RuntimeError(f"covering row {walk.resolved} misses its seed {seed}")
        self.witnesses.append(levels)
        return walk.resolved, levels

    def _feasible(self, part: _Tuple) -> bool:
        return any(_contains(levels, part) for levels in self.witnesses) or (
            self._row(part) is not None
        )

    def _drop_infeasible(self, seed: _Tuple) -> None:
        """Record the smallest infeasible part of `seed` and drop every tuple containing it."""
        core = seed
        while len(core) > 1:
            smaller = next(
                (
                    part
                    for part in itertools.combinations(core, len(core) - 1)
                    if not self._feasible(part)
                ),
                None,
            )
            if smaller is None:
                break
            core = smaller
        self.impossible.add(core)
        self.builder.forbid(core)
        self.uncovered.difference_update(
            [target for target in self.uncovered if set(core) <= set(target)]
        )

    def _infeasible(self, target: _Tuple) -> bool:
        return any(set(core) <= set(target) for core in self.impossible)

    def rows(self) -> list[dict[str, Any]]:
        rows: list[tuple[dict[str, Any], set[_Tuple]]] = []
        while self.uncovered:
            seeds: dict[tuple[int, ...], _Tuple] = {}
            for target in sorted(self.uncovered):
                seeds.setdefault(tuple(factor for factor, _ in target), target)
                if len(seeds) == _SEED_CANDIDATES:
                    break
            best: tuple[dict[str, Any], set[_Tuple]] | None = None
            for seed in seeds.values():
                if seed not in self.uncovered:  # dropped with an infeasible part of another seed
                    continue
                built = self._row(seed)
                if built is None:
                    self._drop_infeasible(seed)
                    continue
                tuples = _tuples_of(built[1], self.strength)
                if best is None or len(tuples & self.uncovered) > len(best[1] & self.uncovered):
                    best = (built[0], tuples)
            if best is not None:
                rows.append(best)
                self.uncovered.difference_update(best[1])
        # Drop rows whose tuples the other rows cover too (latest first: early rows cover most).
        counts = Counter(t for _, tuples in rows for t in tuples)
        for index in range(len(rows) - 1, -1, -1):
            if all(counts[t] > 1 for t in rows[index][1]):
                counts.subtract(rows[index][1])
                del rows[index]
        variants = [row for row, _ in rows] or _all(self.tpl)[:1]
        covered: set[_Tuple] = set()
        for variant in variants:
            levels = _levels_of(self.tpl, self.tpl.walk(variant), self.factors)
            covered |= _tuples_of(levels, self.strength)
        missing = [t for t in self.targets if t not in covered and not self._infeasible(t)]
        if missing:
            raise RuntimeError(f"covering set misses {len(missing)} feasible tuples")
        return _unique(variants)


# -- presets -----------------------------------------------------------------------------------


def _preset(tpl: Template, name: str) -> dict[str, Any]:
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
            value = [v for v in value if any(same_value(v, c) for c in q.choices)]
        elif q.choices and not any(same_value(value, c) for c in q.choices):
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


def preset_answers(template: Path, name: str) -> dict[str, Any]:
    """The answers preset `name` gives (`backforge new --preset NAME`): only the questions it
    names that this copier.yml asks, so that every other question keeps its default."""
    resolved = _preset(load_template(Path(template)), name)
    return {key: value for key, value in resolved.items() if key in PRESETS[name]}


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


def _explicit(tpl: Template, spec: str) -> list[dict[str, Any]]:
    variants = []
    for part in _split_top(spec, ";"):
        if not part.strip():
            continue
        answers = parse_answers(part)
        errors, walk = validate_walk(tpl, answers)
        if errors:
            raise VariantError(f"invalid answers {part.strip()!r}: " + "; ".join(errors))
        variants.append(walk.resolved)
    if not variants:
        raise VariantError(f"no answers in {spec!r}")
    return variants


def _sample(tpl: Template, spec: str) -> list[dict[str, Any]]:
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
    """The variants of a set: all, pairwise, 3wise, presets, preset:NAME, sample:N[:SEED], answers.

    Every variant is a full answers dict as `resolve` returns it; raises `VariantError`.
    `sample:N` with N larger than `all` returns all of `all`.
    """
    tpl = load_template(Path(template))
    spec = spec.strip()
    if spec == "all" or spec in STRENGTHS:
        # Seconds each at 24,960 variants (3wise: about 12 s), asked for again and again by
        # one run (`check --set 3wise` and the tests that prove the sets): computed once per
        # copier.yml, handed out as copies that callers may change.
        kept = tpl.sets.get(spec)
        if kept is None:
            kept = _all(tpl) if spec == "all" else _Covering(tpl, STRENGTHS[spec]).rows()
            tpl.sets[spec] = kept
        return [_fresh(variant) for variant in kept]
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
