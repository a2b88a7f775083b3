"""Tests of the variant model (backforge/model/) against the real and fixture copier.yml files.

Expected numbers are derived here independently: from the YAML of copier.yml and from rules that
the fixtures state in plain Python, never from the module under test.
"""

from __future__ import annotations

import functools
import itertools
import re
import shlex
import shutil
import textwrap
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, cast

import copier
import pytest
import yaml

from backforge import model as v

REPO = Path(__file__).resolve().parents[1]
FEATURES = ["cache", "rate_limit", "websockets", "jobs", "email", "metrics", "sentry"]
# copier.yml's features validator: these need auth=jwt.
JWT_ONLY_FEATURES = frozenset({"billing", "audit", "admin", "oidc", "totp"})
NON_CODE = ("project_name", "project_slug", "description", "ci", "docker")

Answers = dict[str, Any]


def copier_yml(
    features: Iterable[str] = FEATURES,
    *,
    extra: str = "",
    features_validator: str = "",
    slug_default: str = "{{ project_name | lower | regex_replace('[^a-z0-9]+', '-') }}",
) -> str:
    """A copier.yml shaped like the planned backforge one (jwt, multi_tenant, features)."""
    text = textwrap.dedent(
        """\
        _subdirectory: template
        _envops:
          undefined: jinja2.StrictUndefined
          trim_blocks: true
          lstrip_blocks: true
        project_name:
          type: str
          help: Name
          validator: >-
            {% if not project_name or project_name | length > 60 %}project_name must be 1 to 60
            {%- elif not (project_name | regex_search('^[ -~]+$')) %}project_name must be ASCII
            {%- endif %}
        project_slug:
          type: str
          default: "SLUG_DEFAULT"
          validator: >-
            {% if not (project_slug | regex_search('^[a-z][a-z0-9-]*$')) %}project_slug must
            match ^[a-z][a-z0-9-]*$: got "{{ project_slug }}"{% endif %}
        description: A service
        database:
          type: str
          choices:
            SQLite: sqlite
            PostgreSQL: postgresql
            MySQL: mysql
          default: sqlite
        auth:
          type: str
          choices:
            JWT: jwt
            None: none
          default: jwt
        multi_tenant:
          type: bool
          default: false
          when: "{{ auth == 'jwt' }}"
        features:
          type: str
          multiselect: true
          choices: FEATURE_CHOICES
          default: []
          validator: "FEATURES_VALIDATOR"
        ci:
          type: str
          choices: [github, gitlab, none]
          default: github
        docker:
          type: bool
          default: true
        package_name:
          type: str
          when: false
          default: "{{ project_slug | replace('-', '_') }}"
        """
    )
    return text.replace("SLUG_DEFAULT", slug_default).replace(
        "FEATURE_CHOICES", "[" + ", ".join(features) + "]"
    ).replace("FEATURES_VALIDATOR", features_validator) + textwrap.dedent(extra)


def make_template(root: Path, text: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "copier.yml").write_text(text, encoding="utf-8")
    return root


@pytest.fixture
def rich(tmp_path: Path) -> Path:
    """3 databases x (none | jwt x multi_tenant) x 7 features x 3 ci x 2 docker."""
    return make_template(tmp_path / "rich", copier_yml())


WEBSOCKETS_NEEDS_JWT = (
    "{% if 'websockets' in features and auth != 'jwt' %}"
    "features: websockets needs auth=jwt{% endif %}"
)
CACHE_BACKEND = """\
    cache_backend:
      type: str
      choices: [redis, memory]
      default: redis
      when: "{{ 'cache' in features }}"
    """


@pytest.fixture
def constrained(tmp_path: Path) -> Path:
    """Small: 3 features, a cross-question validator and a `when` that depends on a feature."""
    text = copier_yml(
        ["cache", "websockets", "jobs"],
        features_validator=WEBSOCKETS_NEEDS_JWT,
        extra=CACHE_BACKEND,
    )
    return make_template(tmp_path / "constrained", text)


def constrained_rules(answers: Mapping[str, Any]) -> Answers | None:
    """The constrained fixture's rules in plain Python: the resolved answers, or None."""
    out = dict(answers)
    if out["auth"] != "jwt":
        out.pop("multi_tenant", None)
    if "cache" not in out["features"]:
        out.pop("cache_backend", None)
    if "websockets" in out["features"] and out["auth"] != "jwt":
        return None
    return out


def raw_config(template: Path) -> dict[str, Any]:
    data = yaml.safe_load((template / "copier.yml").read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def choice_values(details: Mapping[str, Any]) -> list[Any]:
    choices = details.get("choices") or []
    return list(choices.values()) if isinstance(choices, dict) else list(choices)


def expected_all_count(template: Path) -> int:
    """database x auth/multi_tenant x 2^features, read from the YAML (no Jinja involved); the
    features that need auth=jwt (`JWT_ONLY_FEATURES`) join the jwt variants only."""
    config = raw_config(template)
    databases = len(choice_values(config["database"])) if "database" in config else 1
    features = choice_values(config["features"]) if "features" in config else []
    every_set: int = 2 ** len(features)
    if "auth" not in config:
        return databases * every_set
    auth = choice_values(config["auth"])
    jwt_only = [f for f in features if f in JWT_ONLY_FEATURES]
    jwt = ("jwt" in auth) * (2 if "multi_tenant" in config else 1)  # multi_tenant: jwt only
    others = len(auth) - ("jwt" in auth)
    without_jwt_only: int = 2 ** (len(features) - len(jwt_only))
    return databases * (jwt * every_set + others * without_jwt_only)


def code_part(answers: Mapping[str, Any]) -> tuple[Any, ...]:
    return tuple(
        (k, tuple(x) if isinstance(x, list) else x)
        for k, x in answers.items()
        if k in v.CODE_QUESTIONS
    )


def frozen(answers: Mapping[str, Any]) -> tuple[Any, ...]:
    return tuple((k, tuple(x) if isinstance(x, list) else x) for k, x in answers.items())


# -- factors and pairs, computed independently of the module -----------------------------------

Level = tuple[str, Any]  # (factor name, value); a multiselect choice is "features.cache"


def kubernetes_allows(levels: Iterable[Level]) -> bool:
    """copier.yml's rules for `kubernetes`, the one free factor with rules of its own: asked only
    with docker (absent, so no level, without it), refused with sqlite."""
    values = dict(levels)
    if "kubernetes" in values and values.get("docker") is False:
        return False
    return not (values.get("kubernetes") is True and values.get("database") == "sqlite")


def factor_space(template: Path) -> dict[str, list[Any]]:
    """Every question with choices or a bool type; each multiselect choice as on/off."""
    space: dict[str, list[Any]] = {}
    for name, details in raw_config(template).items():
        if name.startswith("_") or not isinstance(details, dict) or details.get("when") is False:
            continue
        if details.get("multiselect"):
            for choice in choice_values(details):
                space[f"{name}.{choice}"] = [True, False]
        elif details.get("choices"):
            space[name] = choice_values(details)
        elif details.get("type") == "bool":
            space[name] = [True, False]
    return space


def levels_of(answers: Mapping[str, Any], space: Mapping[str, list[Any]]) -> set[Level]:
    levels: set[Level] = set()
    for factor in space:
        question, _, choice = factor.partition(".")
        if question not in answers:
            continue
        value = answers[question]
        levels.add((factor, choice in value if choice else value))
    return levels


def pairs_of(levels: set[Level]) -> set[tuple[Level, Level]]:
    return {(a, b) for a, b in itertools.combinations(sorted(levels, key=repr), 2) if a[0] != b[0]}


def brute_force(
    space: Mapping[str, list[Any]], rules: Callable[[Mapping[str, Any]], Answers | None]
) -> list[Answers]:
    """Every valid combination of the factor space (questions assembled from their factors)."""
    names = list(space)
    out: dict[tuple[Any, ...], Answers] = {}
    for combo in itertools.product(*(space[n] for n in names)):
        answers: Answers = {}
        for name, value in zip(names, combo, strict=True):
            question, _, choice = name.partition(".")
            if choice:
                answers.setdefault(question, [])
                if value:
                    answers[question].append(choice)
            else:
                answers[question] = value
        resolved = rules(answers)
        if resolved is not None:
            out.setdefault(frozen(resolved), resolved)
    return list(out.values())


# ---------------------------------------------------------------------------------------------
# Loading and Copier-like evaluation
# ---------------------------------------------------------------------------------------------


def test_load_questions_follows_copier_yml_order_and_flags_computed_values() -> None:
    config = raw_config(REPO)
    questions = v.load_questions(REPO)
    assert [q.name for q in questions] == [k for k in config if not k.startswith("_")]
    for q in questions:
        details = config[q.name] if isinstance(config[q.name], dict) else {"default": 0}
        assert q.computed == (details.get("when") is False)
        assert q.choices == choice_values(details)
        assert q.has_default == ("default" in details)


def test_resolve_fills_defaults_and_placeholder_name(rich: Path) -> None:
    resolved = v.resolve(rich, {"database": "mysql"})
    assert resolved["project_name"] == "Forge App"
    assert resolved["project_slug"] == "forge-app"  # a Jinja default using regex_replace
    assert resolved["database"] == "mysql"
    assert resolved["multi_tenant"] is False
    assert "package_name" not in resolved  # computed
    config = raw_config(rich)
    assert list(resolved) == [k for k in config if not k.startswith("_") and k != "package_name"]


def test_resolve_drops_answers_of_questions_not_asked(rich: Path) -> None:
    resolved = v.resolve(rich, {"auth": "none", "multi_tenant": True})
    assert "multi_tenant" not in resolved
    assert v.resolve(rich, {"features": "[jobs, cache, jobs]", "docker": "no"})["features"] == [
        "cache",
        "jobs",
    ]


@pytest.mark.parametrize("when", ["false", "'0'", "''", "'no'", "'{{ 0 }}'", "'{{ \"off\" }}'"])
def test_when_uses_copier_truthiness(tmp_path: Path, when: str) -> None:
    extra = f"    hidden:\n      type: str\n      default: x\n      when: {when}\n"
    template = make_template(tmp_path, copier_yml(extra=extra))
    assert "hidden" not in v.resolve(template, {})


def test_validate_reports_each_problem_naming_its_question(rich: Path) -> None:
    errors = v.validate(
        rich,
        {
            "databse": "mysql",
            "database": "oracle",
            "auth": "none",
            "multi_tenant": True,
            "features": ["cache", "teleport"],
            "project_slug": "Bad Slug",
            "package_name": "x",
        },
    )
    text = "\n".join(errors)
    assert "databse" in text and "did you mean 'database'" in text
    assert "database: 'oracle'" in text and "sqlite, postgresql, mysql" in text
    assert "multi_tenant" in text and "auth == 'jwt'" in text
    assert "features: 'teleport'" in text
    assert 'project_slug must match ^[a-z][a-z0-9-]*$: got "Bad Slug"' in text
    assert "package_name" in text
    assert v.validate(rich, {"database": "postgresql", "features": ["jobs"]}) == []


@pytest.mark.parametrize(
    "answers",
    [
        {"project_name": "X Y", "auth": "none", "features": ["jobs", "cache"], "ci": "none"},
        {"project_name": "Shop", "database": "mysql", "multi_tenant": True, "docker": False},
    ],
)
def test_resolve_matches_what_copier_records(tmp_path: Path, rich: Path, answers: Answers) -> None:
    (rich / "template").mkdir()
    (rich / "template" / "{{_copier_conf.answers_file}}.jinja").write_text(
        "{{ _copier_answers | to_nice_yaml }}", encoding="utf-8"
    )
    dst = tmp_path / "out"
    copier.run_copy(str(rich), dst, data=answers, defaults=True, unsafe=True, quiet=True)
    recorded = yaml.safe_load((dst / ".copier-answers.yml").read_text(encoding="utf-8"))
    recorded.pop("_src_path")
    assert v.resolve(rich, answers) == recorded


# ---------------------------------------------------------------------------------------------
# all
# ---------------------------------------------------------------------------------------------


def test_all_on_real_copier_yml_counts_the_product() -> None:
    variants = v.select(REPO, "all")
    assert len(variants) == expected_all_count(REPO)
    assert len({frozen(x) for x in variants}) == len(variants)
    defaults = v.default_answers(REPO)
    for variant in variants:
        assert v.validate(REPO, variant) == []
        for name, value in variant.items():  # non-code answers at their defaults
            if name not in v.CODE_QUESTIONS:
                assert value == defaults[name]


def test_all_on_rich_fixture(rich: Path) -> None:
    variants = v.select(rich, "all")
    assert expected_all_count(rich) == 3 * (1 + 2) * 2**7 == 1152
    assert len(variants) == 1152
    assert len({code_part(x) for x in variants}) == 1152
    for variant in variants:
        assert ("multi_tenant" in variant) == (variant["auth"] == "jwt")
        assert variant["features"] == [f for f in FEATURES if f in variant["features"]]
        assert (variant["ci"], variant["docker"]) == ("github", True)
    assert v.select(rich, "all") == variants  # stable order


def test_all_drops_combinations_that_validators_reject(constrained: Path) -> None:
    variants = v.select(constrained, "all")
    # jwt: 2 (multi_tenant) x 2^3; none: only the 2^2 feature sets without websockets.
    assert len(variants) == 3 * (2 * 2**3 + 2**2)
    assert not any("websockets" in x["features"] and x["auth"] != "jwt" for x in variants)
    for variant in variants:
        assert ("cache_backend" in variant) == ("cache" in variant["features"])


def test_all_raises_when_defaults_are_invalid(tmp_path: Path) -> None:
    template = make_template(tmp_path, copier_yml(slug_default="9-{{ project_name }}"))
    with pytest.raises(v.VariantError, match="project_slug"):
        v.select(template, "all")


# ---------------------------------------------------------------------------------------------
# pairwise
# ---------------------------------------------------------------------------------------------


def assert_covers(
    template: Path, rows: list[Answers], valid: list[Answers], space: Mapping[str, list[Any]]
) -> None:
    feasible: set[tuple[Level, Level]] = set()
    for variant in valid:
        feasible |= pairs_of(levels_of(variant, space))
    covered: set[tuple[Level, Level]] = set()
    for row in rows:
        assert v.validate(template, row) == []
        covered |= pairs_of(levels_of(row, space))
    assert feasible - covered == set()
    assert covered <= feasible


def test_pairwise_covers_every_feasible_pair_of_the_real_copier_yml() -> None:
    space = factor_space(REPO)
    assert {"ci", "docker", "database"} <= set(space)
    rows = v.select(REPO, "pairwise")
    # Feasible pairs: those of the `all` variants (code questions, `when` and validators
    # applied), each code level with every value of the other factors, and those factors'
    # pairs among themselves (they have neither `when` rules nor validators, except kubernetes:
    # `kubernetes_allows`).
    code_levels: set[Level] = set()
    feasible: set[tuple[Level, Level]] = set()
    for variant in v.select(REPO, "all"):
        levels = levels_of({k: x for k, x in variant.items() if k in v.CODE_QUESTIONS}, space)
        code_levels |= levels
        feasible |= pairs_of(levels)
    others = {
        f: values for f, values in space.items() if f.partition(".")[0] not in v.CODE_QUESTIONS
    }
    other_levels = {(f, x) for f, values in others.items() for x in values}
    feasible |= pairs_of(other_levels) | {
        pair for a in code_levels for b in other_levels for pair in pairs_of({a, b})
    }
    feasible = {pair for pair in feasible if kubernetes_allows(pair)}
    covered: set[tuple[Level, Level]] = set()
    for row in rows:
        assert v.validate(REPO, row) == []
        covered |= pairs_of(levels_of(row, space))
    assert covered == feasible
    sizes = sorted((len(values) for values in space.values()), reverse=True)
    assert len(rows) <= 2 * sizes[0] * sizes[1]


def test_pairwise_covers_feasible_pairs_under_when_and_validators(constrained: Path) -> None:
    space = factor_space(constrained)
    valid = brute_force(space, constrained_rules)
    rows = v.select(constrained, "pairwise")
    assert_covers(constrained, rows, valid, space)
    infeasible = (("auth", "none"), ("features.websockets", True))
    assert not any(set(infeasible) <= levels_of(row, space) for row in rows)
    assert len(rows) < len(valid) / 5


def test_pairwise_is_small_deterministic_and_covers_the_rich_fixture(rich: Path) -> None:
    rows = v.select(rich, "pairwise")
    again = v.select(make_template(rich.parent / "copy", copier_yml()), "pairwise")
    assert rows == again
    space = factor_space(rich)
    assert len(space) == 1 + 1 + 1 + 7 + 1 + 1  # database auth multi_tenant 7x features ci docker
    # Feasible pairs without enumerating all 9216 combinations: all pairs, except multi_tenant
    # (either value) with auth=none, and multi_tenant is only ever seen with auth=jwt.
    covered: set[tuple[Level, Level]] = set()
    for row in rows:
        assert v.validate(rich, row) == []
        covered |= pairs_of(levels_of(row, space))
    levels = [(f, x) for f, values in space.items() for x in values]
    for a, b in itertools.combinations(levels, 2):
        if a[0] == b[0]:
            continue
        pair = tuple(sorted((a, b), key=repr))
        dead = {a[0], b[0]} >= {"multi_tenant", "auth"} and ("auth", "none") in (a, b)
        assert (pair in covered) != dead, pair
    assert len(rows) <= 15
    assert len(rows) * 50 < len(v.select(rich, "all"))


def test_pairwise_ids_are_unique(rich: Path) -> None:
    defaults = v.default_answers(rich)
    rows = v.select(rich, "pairwise")
    assert len({v.variant_id(row, defaults) for row in rows}) == len(rows)


# ---------------------------------------------------------------------------------------------
# 3wise: an independent checker of every feasible triple
# ---------------------------------------------------------------------------------------------

GROWN = REPO / "tests" / "fixtures" / "grown"
"""copier.yml once the coming features land: 12 features, five of them needing auth=jwt."""

Triple = tuple[Level, Level, Level]
ABSENT = object()


@functools.cache
def selected(template: Path, spec: str) -> list[Answers]:
    """`select`, once per module for the sets that several tests read (none changes them)."""
    return v.select(template, spec)


def redis_features(template: Path) -> set[str]:
    """The features that turn copier.yml's computed `redis` on, read from its `redis_features`
    default (a Jinja list literal) without Jinja."""
    default = raw_config(template)["redis_features"]["default"]
    (listed,) = re.findall(r"select\('in', \[([^\]]*)\]\)", default)
    return {name.strip().strip("'\"") for name in listed.split(",")}


def levels_with_redis(
    answers: Mapping[str, Any], space: Mapping[str, list[Any]], redis: set[str]
) -> set[Level]:
    """`levels_of`, plus the computed yes/no `redis` (a factor of the covering sets)."""
    return levels_of(answers, space) | {("redis", bool(redis & set(answers["features"])))}


def canonical(levels: Iterable[Level]) -> tuple[Level, ...]:
    return tuple(sorted(levels, key=repr))


@functools.cache
def feasible_triples(template: Path) -> set[Triple]:
    """Every triple of values of three factors that some valid variant has.

    The code factors' combinations are those of the template's `all` (validators and `when`
    applied; `redis` computed from the features); the other factors (ci, docker: neither
    `when` nor validator) take any value with any of them, which `all` does not show (it
    leaves them at their defaults). Counted per combination of factors, column-wise.
    """
    space = factor_space(template)
    redis = redis_features(template)
    free = {f: x for f, x in space.items() if f.partition(".")[0] not in v.CODE_QUESTIONS}
    code = [
        {f: x for f, x in levels_with_redis(variant, space, redis) if f not in free}
        for variant in selected(template, "all")
    ]
    code_factors = sorted({factor for row in code for factor in row})
    columns = {factor: [row.get(factor, ABSENT) for row in code] for factor in code_factors}

    def code_tuples(size: int) -> set[tuple[Level, ...]]:
        found: set[tuple[Level, ...]] = set()
        for combo in itertools.combinations(code_factors, size):
            for values in set(zip(*(columns[f] for f in combo), strict=True)):
                if ABSENT not in values:
                    found.add(canonical(zip(combo, values, strict=True)))
        return found

    def free_tuples(size: int) -> set[tuple[Level, ...]]:
        return {
            canonical(zip(combo, values, strict=True))
            for combo in itertools.combinations(sorted(free), size)
            for values in itertools.product(*(free[f] for f in combo))
        }

    triples: set[Triple] = set()
    for size in range(4):
        for a in code_tuples(size) if size else {()}:
            for b in free_tuples(3 - size):
                triples.add(cast(Triple, canonical((*a, *b))))
    return {triple for triple in triples if kubernetes_allows(triple)}


def missing_triples(
    template: Path, rows: list[Answers], feasible: set[Triple]
) -> tuple[set[Triple], set[Triple]]:
    """(feasible triples no row has, triples of rows that are not feasible)."""
    space = factor_space(template)
    redis = redis_features(template)
    covered: set[Triple] = set()
    for row in rows:
        levels = canonical(levels_with_redis(row, space, redis))
        covered |= set(itertools.combinations(levels, 3))
    return feasible - covered, covered - feasible


@pytest.mark.parametrize("template", [REPO, GROWN], ids=["copier.yml", "grown"])
def test_3wise_covers_every_feasible_triple(template: Path) -> None:
    started = time.perf_counter()
    rows = selected(template, "3wise")
    seconds = time.perf_counter() - started
    for row in rows:
        assert v.validate(template, row) == []
    feasible = feasible_triples(template)
    missing, impossible = missing_triples(template, rows, feasible)
    assert missing == set()
    assert impossible == set()
    every = len(selected(template, "all"))
    pairwise = len(v.select(template, "pairwise"))
    assert pairwise <= len(rows) < every / 10
    name = template.relative_to(REPO) if template != REPO else "copier.yml"
    print(f"\n{name}: 3wise {len(rows)} ({seconds:.1f} s), pairwise {pairwise}, all {every}")


def test_3wise_excludes_what_validators_and_when_forbid() -> None:
    """The grown copier.yml's validator: billing, admin, audit, oidc and totp need auth=jwt;
    multi_tenant is asked only with jwt; `redis` is on exactly with a Redis feature."""
    rows = selected(GROWN, "3wise")
    jwt_only = {"billing", "admin", "audit", "oidc", "totp"}
    assert {row["auth"] for row in rows} == {"jwt", "none"}
    for row in rows:
        if row["auth"] == "none":
            assert not jwt_only & set(row["features"]) and "multi_tenant" not in row
    with_none = [set(row["features"]) for row in rows if row["auth"] == "none"]
    assert {"cache", "sentry"} <= set().union(*with_none)


@pytest.mark.parametrize("template", [REPO, GROWN], ids=["copier.yml", "grown"])
def test_the_checker_fails_on_a_set_that_misses_a_triple(template: Path) -> None:
    rows = selected(template, "3wise")
    feasible = feasible_triples(template)
    space = factor_space(template)
    redis = redis_features(template)
    lost = (("auth", "none"), ("database", "mysql"), ("redis", False))
    kept = [row for row in rows if not set(lost) <= levels_with_redis(row, space, redis)]
    assert len(kept) < len(rows)
    missing, impossible = missing_triples(template, kept, feasible)
    assert lost in missing
    assert impossible == set()
    # And a row the template forbids holds a triple that is not feasible.
    forbidden = {**rows[0], "auth": "none", "multi_tenant": True}
    assert missing_triples(template, [forbidden], feasible)[1]


def test_3wise_is_deterministic(tmp_path: Path) -> None:
    copy = tmp_path / "grown"
    copy.mkdir()
    shutil.copy(GROWN / "copier.yml", copy / "copier.yml")
    assert v.select(copy, "3wise") == selected(GROWN, "3wise")


def test_a_set_is_computed_once_per_copier_yml_and_handed_out_as_copies(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    template = make_template(tmp_path / "template", copier_yml())
    computed: list[str] = []
    rows, everything = v.sets._Covering.rows, v.sets._all

    def counted_rows(self: Any) -> list[dict[str, Any]]:
        computed.append("covering")
        return rows(self)

    def counted_all(tpl: Any) -> list[dict[str, Any]]:
        computed.append("all")
        return everything(tpl)

    monkeypatch.setattr(v.sets._Covering, "rows", counted_rows)
    monkeypatch.setattr(v.sets, "_all", counted_all)
    first = v.select(template, "pairwise")
    expected = v.select(make_template(tmp_path / "copy", copier_yml()), "pairwise")
    first[0]["database"] = "changed by a caller"
    first[0]["features"].append("changed by a caller")
    first.pop()
    assert v.select(template, "pairwise") == expected  # the callers' changes stay theirs
    assert len(v.select(template, "all")) == len(v.select(template, "all")) > len(expected)
    assert computed == ["covering", "covering", "all"]
    # Another copier.yml (the same path, changed) is computed again.
    (template / "copier.yml").write_text(copier_yml() + "\n# changed\n", encoding="utf-8")
    assert v.select(template, "pairwise") == expected
    assert computed == ["covering", "covering", "all", "covering"]


# ---------------------------------------------------------------------------------------------
# presets, sample, explicit answers
# ---------------------------------------------------------------------------------------------


def test_presets_on_rich_fixture(rich: Path) -> None:
    minimal, default, saas = (v.select(rich, f"preset:{name}")[0] for name in v.PRESETS)
    assert default == v.default_answers(rich)
    assert minimal["database"] == "sqlite" and minimal["auth"] == "none"
    assert minimal["features"] == [] and minimal["ci"] == "none" and minimal["docker"] is False
    assert "multi_tenant" not in minimal
    assert saas["database"] == "postgresql" and saas["auth"] == "jwt"
    assert saas["multi_tenant"] is True and saas["features"] == FEATURES
    assert v.select(rich, "presets") == [minimal, default, saas]


def test_presets_drop_answers_the_template_does_not_offer(tmp_path: Path) -> None:
    text = copier_yml(["cache", "jobs"]).replace("ci:\n", "ci_removed:\n")
    text = text.replace("    JWT: jwt\n", "")
    text = text.replace("default: jwt", "default: none")
    template = make_template(tmp_path, text)
    saas = v.select(template, "preset:saas")[0]
    assert saas["auth"] == "none"  # jwt is not a choice here: dropped, default kept
    assert "multi_tenant" not in saas
    assert saas["features"] == ["cache", "jobs"]  # "all available"
    minimal = v.select(template, "preset:minimal")[0]
    assert "ci" not in minimal
    for name in v.PRESETS:
        assert v.validate(template, v.select(template, f"preset:{name}")[0]) == []


def test_presets_on_real_copier_yml_are_valid() -> None:
    config = raw_config(REPO)
    for variant in v.select(REPO, "presets"):
        assert v.validate(REPO, variant) == []
        assert set(variant) <= set(config)


def test_presets_drop_answers_that_validators_reject(tmp_path: Path) -> None:
    validator = (
        "{% if 'cache' in features and database == 'postgresql' %}"
        "features: cache is not supported on postgresql{% endif %}"
    )
    template = make_template(tmp_path, copier_yml(features_validator=validator))
    saas = v.select(template, "preset:saas")[0]
    assert (saas["database"], saas["auth"], saas["multi_tenant"]) == ("postgresql", "jwt", True)
    assert saas["features"] == []  # the rejected answer is dropped, its default kept
    assert v.validate(template, saas) == []


def test_unknown_preset(rich: Path) -> None:
    with pytest.raises(v.VariantError, match=r"nope.*minimal"):
        v.select(rich, "preset:nope")


def test_sample_is_deterministic_and_a_subset_of_all(rich: Path) -> None:
    every = {frozen(x) for x in v.select(rich, "all")}
    first = v.select(rich, "sample:10")
    assert first == v.select(rich, "sample:10:0")
    assert len(first) == 10 and len({frozen(x) for x in first}) == 10
    assert {frozen(x) for x in first} <= every
    other = v.select(rich, "sample:10:7")
    assert other == v.select(rich, "sample:10:7") and other != first
    everything = expected_all_count(REPO)
    assert len(v.select(REPO, f"sample:{everything + 1}")) == everything  # capped at all


@pytest.mark.parametrize("spec", ["sample:", "sample:x", "sample:0", "sample:1:2:3", "sample:2:y"])
def test_bad_sample_specs(rich: Path, spec: str) -> None:
    with pytest.raises(v.VariantError, match="sample"):
        v.select(rich, spec)


def test_explicit_answers(rich: Path) -> None:
    (one,) = v.select(rich, "database=mysql,auth=jwt,features=[jobs,cache]")
    assert one == v.resolve(rich, {"database": "mysql", "features": ["cache", "jobs"]})
    assert one["features"] == ["cache", "jobs"]
    two = v.select(
        rich,
        "database=postgresql, multi_tenant=true ; auth=none,project_name='A, B; C',docker=no",
    )
    assert [x["database"] for x in two] == ["postgresql", "sqlite"]
    assert two[0]["multi_tenant"] is True
    assert two[1]["project_name"] == "A, B; C" and two[1]["docker"] is False
    (quoted,) = v.select(rich, "project_name=O'Brien Shop,features=[]")
    assert quoted["project_name"] == "O'Brien Shop" and quoted["project_slug"] == "o-brien-shop"


@pytest.mark.parametrize(
    ("spec", "needle"),
    [
        ("database=oracle", "database: 'oracle'"),
        ("databse=mysql", "databse"),
        ("auth=none,multi_tenant=true", "multi_tenant"),
        ("features=[cache,teleport]", "features"),
        ("project_slug=9lives", "project_slug"),
        ("project_name=", "project_name"),
        ("package_name=x", "package_name"),
        ("database=mysql,database=sqlite", "database"),
        ("features=[cache", "unbalanced"),
        ("database", "unknown variant set"),
        ("everything", "unknown variant set"),
        ("=mysql", "key=value"),
    ],
)
def test_invalid_specs_raise_naming_the_problem(rich: Path, spec: str, needle: str) -> None:
    with pytest.raises(v.VariantError, match=needle.replace("[", r"\[")):
        v.select(rich, spec)


def test_explicit_answers_rejected_by_a_validator(constrained: Path) -> None:
    with pytest.raises(v.VariantError, match="websockets needs auth=jwt"):
        v.select(constrained, "auth=none,features=[websockets]")


# ---------------------------------------------------------------------------------------------
# shards, ids, reproduce commands
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("count", [1, 2, 3, 5, 16])
def test_shards_partition_the_set(rich: Path, count: int) -> None:
    variants = v.select(rich, "pairwise")
    shards = [v.shard(variants, index, count) for index in range(1, count + 1)]
    keys = [[frozen(x) for x in part] for part in shards]
    assert sorted(k for part in keys for k in part) == sorted(frozen(x) for x in variants)
    assert len({k for part in keys for k in part}) == len(variants)  # disjoint
    sizes = [len(part) for part in shards]
    assert max(sizes) - min(sizes) <= 1
    assert shards == [v.shard(variants, index, count) for index in range(1, count + 1)]


def test_parse_shard() -> None:
    assert v.parse_shard("2/4") == (2, 4)
    assert v.parse_shard(" 1/1 ") == (1, 1)
    for bad in ["0/4", "5/4", "x/4", "2", "2/0", "-1/3", "1/2/3", ""]:
        with pytest.raises(v.VariantError, match="shard"):
            v.parse_shard(bad)
    with pytest.raises(v.VariantError):
        v.shard([1, 2], 3, 2)


def test_variant_id(rich: Path) -> None:
    defaults = v.default_answers(rich)
    answers = v.resolve(
        rich, {"database": "postgresql", "multi_tenant": True, "features": ["jobs", "cache"]}
    )
    assert v.variant_id(answers, defaults) == "postgresql-jwt-mt-cache+jobs"
    assert v.variant_id(answers) == "postgresql-jwt-mt-cache+jobs"
    assert v.variant_id(defaults, defaults) == "sqlite-jwt"
    changed = v.variant_id({**answers, "ci": "gitlab"}, defaults)
    assert changed.startswith("postgresql-jwt-mt-cache+jobs-") and len(changed) <= 40
    assert changed == v.variant_id({**answers, "ci": "gitlab"}, defaults)
    assert len({v.variant_id(x) for x in v.select(rich, "all")}) == 1152


def parse_command(command: str) -> tuple[list[str], Answers]:
    words = shlex.split(command)
    data: Answers = {}
    for flag, item in itertools.pairwise(words):
        if flag == "-d":
            key, _, raw = item.partition("=")
            data[key] = yaml.safe_load(raw)
    return words, data


@pytest.mark.parametrize("spec", ["presets", "pairwise", "sample:20:3"])
def test_reproduce_command_round_trips(rich: Path, spec: str) -> None:
    defaults = v.default_answers(rich)
    for variant in v.select(rich, spec):
        command = v.reproduce_command(variant, str(rich))
        assert command == v.reproduce_command(variant, str(rich), defaults)
        words, data = parse_command(command)
        destination = f"/tmp/{v.variant_id(variant, defaults)}"  # noqa: S108
        assert words[:3] == ["backforge", "new", destination]
        assert words[3:6] == ["--template", str(rich), "--defaults"]
        assert v.resolve(rich, data) == variant
        assert "project_name" in data
        assert all(data[k] != defaults[k] for k in data if k != "project_name")


def test_reproduce_command_quotes_lists_and_odd_strings(rich: Path) -> None:
    variant = v.resolve(
        rich, {"features": ["cache", "jobs"], "project_name": "It's 1", "description": "123"}
    )
    command = v.reproduce_command(variant, "gh:acme/backforge")
    assert "-d 'features=[cache, jobs]'" in command
    _, data = parse_command(command)
    assert data["description"] == "123"  # quoted so that YAML keeps it a string
    assert v.resolve(rich, data) == variant
    # Without a local template every answer is passed: still exact.
    assert len(data) == len(variant)


def test_reproduce_command_keeps_an_override_equal_to_a_static_default(rich: Path) -> None:
    variant = v.resolve(rich, {"project_name": "Shop", "project_slug": "forge-app"})
    _, data = parse_command(v.reproduce_command(variant, str(rich)))
    assert data == {"project_name": "Shop", "project_slug": "forge-app"}
    assert v.resolve(rich, data) == variant
    _, data = parse_command(
        v.reproduce_command(v.resolve(rich, {"project_name": "Shop"}), str(rich))
    )
    assert data == {"project_name": "Shop"}  # the derived slug is left to its default


REDIS_COMPUTED = """\
    redis:
      type: bool
      when: false
      default: "{{ features | select('in', ['cache', 'jobs']) | list | length > 0 }}"
    """


def test_pairwise_counts_a_computed_yes_no_as_a_factor(tmp_path: Path) -> None:
    """`redis` (computed from the features) meets every database and auth, with both values,
    although no pair of questions says "no feature that needs Redis"."""
    template = make_template(tmp_path / "redis", copier_yml(extra=REDIS_COMPUTED))
    rows = v.select(template, "pairwise")
    seen = {
        (row["database"], row["auth"], bool({"cache", "jobs"} & set(row["features"])))
        for row in rows
    }
    for redis in (True, False):
        assert {d for d, _, r in seen if r == redis} == {"sqlite", "postgresql", "mysql"}
        assert {a for _, a, r in seen if r == redis} == {"jwt", "none"}
    assert all("redis" not in row for row in rows)  # computed: never an answer of a variant
