"""Every variant of the `pairwise` set updates to exactly a fresh render.

For each variant (computed from the temporary template at 0.2.0, see test_update.py): render at
0.1.0 with the answers that 0.1.0 asks, update to 0.2.0 giving the answers of the questions that
0.2.0 added (an answer added through the update), and compare with a fresh render at 0.2.0
(ignoring .git, .env, uv.lock and the answers file's `_commit`).
"""

from __future__ import annotations

import multiprocessing
import os
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest
from test_update import (
    NEW,
    OLD,
    TemplateRepo,
    answers_of,
    build_template_repo,
    empty_dirs,
    render_at,
    tree,
    update,
)

from backforge.model import default_answers, select, variant_id

JOBS = max(1, min(4, os.cpu_count() or 1))


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> TemplateRepo:
    return build_template_repo(tmp_path_factory.mktemp("template") / "backforge")


def _compare(repo: TemplateRepo, answers: dict[str, object], work: Path) -> list[str]:
    """Problems of one variant's update (empty when it equals a fresh render)."""
    old_answers = {k: v for k, v in answers.items() if k in repo.old_questions}
    added = {k: v for k, v in answers.items() if k not in repo.old_questions}
    project = render_at(repo, work / "updated", OLD, old_answers)
    result = update(project, data=added)
    fresh = render_at(repo, work / "fresh", NEW, answers)
    problems: list[str] = []
    if result.conflicts:
        problems.append(f"conflicts: {[c.location for c in result.conflicts]}")
    if result.to_version != NEW:
        problems.append(f"updated to {result.to_version}, not {NEW}")
    got, want = tree(project), tree(fresh)
    if sorted(got) != sorted(want):
        problems.append(
            f"only in the update: {sorted(set(got) - set(want))}; "
            f"only in the fresh render: {sorted(set(want) - set(got))}"
        )
    differing = sorted(name for name in set(got) & set(want) if got[name] != want[name])
    if differing:
        problems.append(f"differing files: {differing}")
    if empty_dirs(project) != empty_dirs(fresh):
        problems.append(f"empty folders: {empty_dirs(project)} != {empty_dirs(fresh)}")
    stored = {k: v for k, v in answers_of(project).items() if not k.startswith("_")}
    if any(stored.get(k) != v for k, v in answers.items()):
        problems.append(f"answers file {stored} does not record {answers}")
    return problems


def test_every_pairwise_variant_updates_to_a_fresh_render(
    repo: TemplateRepo,
    tmp_path: Path,
    record_property: Callable[[str, object], None],
    capsys: pytest.CaptureFixture[str],
) -> None:
    variants = select(repo.path, "pairwise")
    assert variants, "the pairwise set is empty"
    assert any(k not in repo.old_questions for k in variants[0]), "0.2.0 adds no question"
    defaults = default_answers(repo.path)
    started = time.perf_counter()
    # Copier changes the process's working directory: variants run in processes, not threads.
    jobs = min(JOBS, len(variants))
    with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        outcomes = pool.map(
            _compare,
            [repo] * len(variants),
            variants,
            [tmp_path / str(index) for index in range(len(variants))],
        )
        failures = {
            f"{variant_id(answers, defaults)} {answers}": problems
            for answers, problems in zip(variants, outcomes, strict=True)
            if problems
        }
    seconds = time.perf_counter() - started
    record_property("pairwise_variants_compared", len(variants))
    with capsys.disabled():
        print(f"\nupdates compared with fresh renders: {len(variants)} pairwise variants", end="")
        print(f" in {seconds:.1f} s ({jobs} processes)")
    assert not failures, "\n".join(
        f"{name}:\n  " + "\n  ".join(problems) for name, problems in failures.items()
    )
