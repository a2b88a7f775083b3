"""`backforge check --tier static --set 3wise` and `--tier full --set pairwise --with-resources`
pass on main.

The static tier runs over `3wise` (every feasible triple of answer values in some variant: 39
variants), not `all`: `all` took 160 s of CI's 34 minutes at 1,152 variants, and each coming
feature doubles it. Twice doubled (4,608 variants) it would take 640 s, CI 42 minutes before
those features' own tests, past the 45-minute budget with them; the five features planned
(billing, admin, audit, oidc, totp, each needing jwt) make 24,960 variants, about 58 minutes
alone. `3wise` grows to 48 variants with them (tests/fixtures/grown). `backforge check --set all`
still checks every variant (the repository's GitHub workflow runs it, sharded).

The full tier adds two resources to every pairwise variant (`customer` with every field type and,
with auth=jwt, a user reference; `invoice` referring to it; `backforge.steps.resources`) before
ruff, mypy --strict, the migrations round trip (`alembic upgrade heads` + `alembic check`) and
the project's suite with the resources' tests and the schemathesis test: issue 26's proof for
each database x auth (none, jwt, jwt + multi_tenant) x Redis features (with, without), pairwise
(`test_pairwise_covers_database_auth_and_redis_pairwise`). It rides on the pairwise run, which
installs every variant anyway, instead of projects of its own (each an install and a suite).

Each variant is its own test item (`-k mysql-jwt` reruns one). The variants selected for a run
are checked together, in one `run_check` per tier (files shared between variants are linted
once, full-tier variants run two at a time); each item then asserts on its own variant.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from backforge.check import CheckOptions, VariantResult, run_check
from backforge.cli import app
from backforge.model import default_answers, select, variant_id, variant_of
from backforge.servers import ServerPool
from backforge.steps.results import tier_steps
from backforge.steps.tools import passed_count

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent
DEFAULTS = default_answers(REPO)
THREE_WISE = {variant_id(answers, DEFAULTS): answers for answers in select(REPO, "3wise")}
PAIRWISE = {variant_id(answers, DEFAULTS): answers for answers in select(REPO, "pairwise")}


# The rendered suite runs under its coverage gate (the project's own command) in the pairwise
# variant with the most features (the most code to cover), and without it in the others:
# coverage's tracer doubles a suite's time on Python 3.11, and the full tier's budget is the
# repo's CI's.
COVERED = frozenset({max(PAIRWISE, key=lambda vid: len(PAIRWISE[vid]["features"]))})
runner = CliRunner()


def _selected(request: pytest.FixtureRequest, test: str, variants: Mapping[str, Any]) -> list[Any]:
    """The variants whose items of `test` this session runs (all of them, or those of -k).

    By the item's `vid` parameter, not its test id: pytest names an item by its index (`vid51`)
    instead of a string parameter longer than 100 characters, as ids with every feature are."""
    chosen = {
        item.callspec.params["vid"]
        for item in request.session.items
        if getattr(item, "originalname", None) == test and hasattr(item, "callspec")
    }
    return [answers for vid, answers in variants.items() if vid in chosen]


def _by_id(results: list[VariantResult]) -> dict[str, VariantResult]:
    return {result.id: result for result in results}


@pytest.fixture(scope="module")
def static_results(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, VariantResult]:
    variants = _selected(request, "test_static_tier_passes", THREE_WISE)
    work = tmp_path_factory.mktemp("static")
    return _by_id(run_check(str(REPO), variants, CheckOptions(work_dir=work)))


@pytest.fixture(scope="module")
def full_results(
    request: pytest.FixtureRequest,
    server_pool: ServerPool,
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, VariantResult]:
    variants = _selected(request, "test_full_tier_passes", PAIRWISE)
    work = tmp_path_factory.mktemp("full")
    return _by_id(
        run_check(
            str(REPO),
            variants,
            CheckOptions(
                tier="full",
                jobs=2,
                work_dir=work,
                pool=server_pool,
                coverage=lambda answers: variant_id(answers, DEFAULTS) in COVERED,
                resources=True,
            ),
        )
    )


def _failure(result: VariantResult) -> str:
    failed = result.failed
    if failed is None:
        return ""
    return f"{result.id}: {failed.name}\n{failed.tail}\n{result.reproduce}"


@pytest.mark.parametrize("vid", list(THREE_WISE))
def test_static_tier_passes(vid: str, static_results: dict[str, VariantResult]) -> None:
    result = static_results[vid]
    assert result.ok, _failure(result)
    assert [step.name for step in result.steps] == [
        "render",
        "no-jinja",
        "ruff-check",
        "ruff-format",
        "compile",
        "kubernetes",
        "openapi",
    ]


def test_pairwise_covers_every_database() -> None:
    assert {answers["database"] for answers in PAIRWISE.values()} == {
        "sqlite",
        "postgresql",
        "mysql",
    }


def _auth(answers: Mapping[str, Any]) -> str:
    if answers["auth"] == "none":
        return "none"
    return "jwt+multi_tenant" if answers.get("multi_tenant") else "jwt"


def test_pairwise_covers_database_auth_and_redis_pairwise() -> None:
    """Every pair of database, auth (none, jwt, jwt + multi_tenant) and Redis features (with,
    without) is in the pairwise set that the full tier runs with resources (the set counts
    the computed `redis` as a factor: no feature pair implies "no feature that needs Redis")."""
    rows = [
        (answers["database"], _auth(answers), variant_of(REPO, answers).needs_redis)
        for answers in PAIRWISE.values()
    ]
    levels: list[set[object]] = [
        {"sqlite", "postgresql", "mysql"},
        {"none", "jwt", "jwt+multi_tenant"},
        {True, False},
    ]
    for i, j in [(0, 1), (0, 2), (1, 2)]:
        wanted = {(a, b) for a in levels[i] for b in levels[j]}
        assert {(row[i], row[j]) for row in rows} == wanted


@pytest.mark.parametrize("vid", list(PAIRWISE))
def test_full_tier_passes(vid: str, full_results: dict[str, VariantResult]) -> None:
    result = full_results[vid]
    assert result.ok, _failure(result)
    assert [step.name for step in result.steps] == list(tier_steps("full", resources=True))
    assert result.project is not None
    for added in ("app/models/customer.py", "tests/test_customers.py", "tests/test_invoices.py"):
        assert (result.project / added).is_file(), added
    assert not (result.project / ".venv").exists()  # dropped once the variant passed
    steps = {step.name: step for step in result.steps}
    tests = passed_count(steps["pytest"].output)
    gate = "Required test coverage of 90% reached"
    assert (gate in steps["pytest"].output) == (vid in COVERED), steps["pytest"].output[-2000:]
    assert tests >= 40, result.id
    adding = steps["add-resources"].seconds
    print(
        f"\n{result.id}: {tests} tests in {steps['pytest'].seconds:.1f}s, mypy "
        f"{steps['mypy'].seconds:.1f}s, add-resources {adding:.1f}s, all {result.seconds:.1f}s",
        end="",
    )


SHARDED_SET = "sample:6:7"
"""The shard test splits a small set: what it proves is the split, not the variants (the static
tier over `3wise` above checks those)."""


def test_shards_split_the_set_between_runs_through_the_cli(tmp_path: Path) -> None:
    chosen = {variant_id(answers, DEFAULTS): answers for answers in select(REPO, SHARDED_SET)}
    assert len(chosen) == 6
    ids: list[set[str]] = []
    answers: list[str] = []
    for index in (1, 2):
        out = tmp_path / f"shard{index}.json"
        junit = tmp_path / f"shard{index}.xml"
        shard = ["--shard", f"{index}/2", "--json", str(out), "--junit", str(junit)]
        result = runner.invoke(app, ["check", "--set", SHARDED_SET, *shard])
        assert result.exit_code == 0, result.output
        records = json.loads(out.read_text())
        assert all(record["ok"] for record in records)
        ids.append({record["id"] for record in records})
        answers += [json.dumps(record["answers"], sort_keys=True) for record in records]
        assert junit.read_text().startswith("<?xml")
    assert not ids[0] & ids[1]
    assert ids[0] | ids[1] == set(chosen)
    assert sorted(answers) == sorted(json.dumps(a, sort_keys=True) for a in chosen.values())


def test_bad_usage_exits_2() -> None:
    assert runner.invoke(app, ["check", "--set", "nonsense"]).exit_code == 2
    assert runner.invoke(app, ["check", "--shard", "3/2"]).exit_code == 2
    assert runner.invoke(app, ["check", "--tier", "medium"]).exit_code == 2
    static = runner.invoke(app, ["check", "--set", "preset:minimal", "--with-resources"])
    assert static.exit_code == 2
    assert "--with-resources needs --tier full" in static.output
