"""The promise of issue 5, run in this repository's CI: `backforge check --tier static --set all`
and `--tier full --set pairwise` pass on main."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from backforge.check import run_check
from backforge.cli import app
from backforge.services import ServerPool
from backforge.validate import passed_count
from backforge.variants import select

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent
runner = CliRunner()


def test_static_tier_over_all_passes_through_the_cli(tmp_path: Path) -> None:
    expected = select(REPO, "all")
    out = tmp_path / "static.json"
    junit = tmp_path / "static.xml"
    result = runner.invoke(
        app,
        ["check", "--tier", "static", "--set", "all", "--json", str(out), "--junit", str(junit)],
    )
    assert result.exit_code == 0, result.output
    records = json.loads(out.read_text())
    assert len(records) == len(expected)
    assert all(record["ok"] for record in records)
    assert sorted(json.dumps(r["answers"], sort_keys=True) for r in records) == sorted(
        json.dumps(answers, sort_keys=True) for answers in expected
    )
    assert junit.read_text().startswith("<?xml")


def test_shards_split_the_set_between_runs(tmp_path: Path) -> None:
    ids: list[set[str]] = []
    for index in (1, 2):
        out = tmp_path / f"shard{index}.json"
        result = runner.invoke(
            app, ["check", "--set", "all", "--shard", f"{index}/2", "--json", str(out)]
        )
        assert result.exit_code == 0, result.output
        ids.append({record["id"] for record in json.loads(out.read_text())})
    assert not ids[0] & ids[1]
    assert len(ids[0] | ids[1]) == len(select(REPO, "all"))


def test_bad_usage_exits_2() -> None:
    assert runner.invoke(app, ["check", "--set", "nonsense"]).exit_code == 2
    assert runner.invoke(app, ["check", "--shard", "3/2"]).exit_code == 2
    assert runner.invoke(app, ["check", "--tier", "medium"]).exit_code == 2


def test_full_tier_over_pairwise_passes(server_pool: ServerPool, tmp_path: Path) -> None:
    variants = select(REPO, "pairwise")
    databases = {answers["database"] for answers in variants}
    assert databases == {"sqlite", "postgresql", "mysql"}
    results = run_check(
        str(REPO), variants, "full", jobs=2, work_dir=tmp_path / "work", pool=server_pool
    )
    failures = [
        f"{result.id}: {result.failed.name}\n{result.failed.tail}\n{result.reproduce}"
        for result in results
        if result.failed is not None
    ]
    assert not failures, "\n\n".join(failures)
    for result in results:
        steps = {step.name: step for step in result.steps}
        tests = passed_count(steps["pytest"].output)
        assert tests >= 40, result.id
        print(f"\n{result.id}: {tests} tests in {steps['pytest'].seconds:.1f}s", end="")
