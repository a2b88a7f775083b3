"""`backforge check`: the run loop. Render every variant of a set and prove it, tier by tier.

The **static** tier, for each variant: render (in-process, Copier), no leftover Jinja, `ruff check`,
`ruff format --check`, byte-compile, import `app.main` and build the OpenAPI document
(`steps.static`, `steps.openapi`). The **full** tier adds `uv sync`, `mypy --strict`, hadolint,
the CI schema, the Alembic round trip and the project's own pytest suite against real servers
(`steps.full`, `backforge.servers.ServerPool`); the variants of a run share mypy's cache of the
installed packages, never of their own modules (`steps.full.SharedTypeCache`). With
`CheckOptions.resources` the full tier adds two resources to each variant right after its render
(`steps.resources`), so every later step checks them as well.

What makes the static tier fast over hundreds of variants: files identical across variants are
checked once (`steps.static.FileIndex`), and one shared environment with every variant's
dependencies serves the OpenAPI step (`steps.openapi`).

A variant's steps run in order; after its first failure the rest are recorded as skipped, so a
report always names the step that broke. For steps run once for many variants, each variant's
`seconds` is its share of the batch's wall time.
"""

from __future__ import annotations

import multiprocessing
import os
import shlex
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from backforge.databases import database_of
from backforge.errors import UsageError
from backforge.model import (
    Variant,
    VariantError,
    default_answers,
    reproduce_command,
    variant_ids,
    variant_of,
)
from backforge.servers import ServerPool
from backforge.steps.fast_render import template_snapshot
from backforge.steps.full import (
    Resources,
    SharedTypeCache,
    ci_schema,
    hadolint,
    migrations_round_trip,
    project_pytest,
)
from backforge.steps.kubernetes import kubernetes_variants
from backforge.steps.openapi import (
    OpenAPIRunner,
    default_cache_dir,
    preload_modules,
    project_dependencies,
    shared_environment,
)
from backforge.steps.resources import add_resources, cached_resource_template, example_resources
from backforge.steps.results import (
    FULL_STEPS,
    STATIC_STEPS,
    CheckProgress,
    ProgressCallback,
    Step,
    StepFailed,
    StepResult,
    Tier,
    VariantResult,
    exit_status,
    run_step,
    tier_steps,
)
from backforge.steps.static import (
    PARALLEL_RENDER_MIN,
    FileIndex,
    RenderJob,
    byte_compile_files,
    no_jinja_files,
    render_job,
    ruff_check_layers,
    ruff_format_layers,
)
from backforge.steps.tools import uv_sync
from backforge.template import effective_ref, template_checkout

__all__ = [
    "FULL_STEPS",
    "STATIC_STEPS",
    "CheckOptions",
    "CheckProgress",
    "FileIndex",
    "OpenAPIRunner",
    "ProgressCallback",
    "Tier",
    "VariantResult",
    "byte_compile_files",
    "exit_status",
    "no_jinja_files",
    "ruff_check_layers",
    "ruff_format_layers",
    "run_check",
]


@dataclass(frozen=True, kw_only=True)
class CheckOptions:
    """How `run_check` runs (every field has a default)."""

    tier: Tier = "static"
    """"static" or "full" (see the module docstring for the steps)."""
    jobs: int = field(default_factory=lambda: os.cpu_count() or 1)
    """Worker threads for the per-variant steps (OpenAPI; every full-tier step)."""
    work_dir: Path | None = None
    """Where projects are rendered (`variants/<id>`) and kept; its `variants`, `lint`,
    `openapi`, `pyc`, `snapshot` and `mypy-cache` folders are replaced. None: a temporary
    folder, removed at the end."""
    on_progress: ProgressCallback | None = None
    """Called with a `CheckProgress` after each step (from worker threads too)."""
    vcs_ref: str | None = None
    """The template's git ref; None renders a local git checkout's working tree (`HEAD` plus
    uncommitted changes) and otherwise Copier's default (the latest tag)."""
    pool: ServerPool | None = None
    """The real servers of the full tier; None starts one for the run, stopped at the end."""
    cache_dir: Path | None = None
    """Where shared environments are cached (None: `default_cache_dir()`)."""
    uv_cache: Path | None = None
    """uv's cache for every install (None: uv's own)."""
    keep_venvs: bool = False
    """Keep each passing full-tier project's `.venv` (failing ones keep theirs)."""
    coverage: bool | Callable[[Mapping[str, Any]], bool] = True
    """Run the project's tests with its coverage gate (the project's own command), for every
    variant, none, or the variants whose answers the callable accepts. Without it the tests
    run in about half the time."""
    resources: bool = False
    """Full tier only: add two resources to each variant right after its render, as `backforge
    add resource` does (`customer` with every field type, `invoice` referring to it; see
    `steps.resources`), so that every later step checks them too (`add-resources` step)."""


class _Run:
    def __init__(
        self,
        template: str,
        variants: Sequence[Mapping[str, Any]],
        options: CheckOptions,
        root: Path,
        model: _Model,
    ) -> None:
        tier = options.tier
        self.template = template
        self.options = options
        self.tier = tier
        self.jobs = max(1, options.jobs)
        self.root = root
        self.vcs_ref = effective_ref(template, options.vcs_ref)
        self.cache_dir = options.cache_dir or default_cache_dir()
        self.steps = tier_steps(tier, options.resources)
        self.total = len(variants) * len(self.steps)
        self.completed = 0
        self.failed_ids: set[str] = set()
        self.passed = 0
        self.message = "starting"
        self._lock = threading.Lock()
        defaults = model.defaults
        self.results: list[VariantResult] = []
        self.paths: dict[str, Path] = {}
        self.variants: dict[str, Variant | None] = {}
        ids = variant_ids(variants, defaults)
        for vid, answers, seen in zip(ids, variants, model.variants, strict=True):
            self.variants[vid] = seen
            command = reproduce_command(answers, template, defaults)
            if self.vcs_ref is not None:
                command += f" --vcs-ref {shlex.quote(self.vcs_ref)}"
            self.paths[vid] = root / "variants" / vid
            self.results.append(
                VariantResult(
                    id=vid,
                    answers=dict(answers),
                    tier=tier,
                    reproduce=command,
                    project=root / "variants" / vid,
                )
            )

    # -- progress and recording -----------------------------------------------------------

    def _notify(self, message: str | None = None) -> None:
        if message is not None:
            self.message = message
        if self.options.on_progress is not None:
            self.options.on_progress(
                CheckProgress(
                    completed=self.completed,
                    total=self.total,
                    passed=self.passed,
                    failed=len(self.failed_ids),
                    message=self.message,
                )
            )

    def counted(self, variant: VariantResult, result: StepResult) -> None:
        """Account for a step result already appended to `variant.steps`."""
        with self._lock:
            self.completed += 1
            if result.status == "failed":
                self.failed_ids.add(variant.id)
            elif len(variant.steps) == len(self.steps) and variant.ok:
                self.passed += 1
            self._notify()

    def record(self, variant: VariantResult, result: StepResult) -> None:
        """Append a step's result, as skipped when an earlier step of the variant failed."""
        if not variant.ok:
            result = StepResult(result.name, "skipped")
        variant.steps.append(result)
        self.counted(variant, result)

    def phase(self, message: str) -> None:
        with self._lock:
            self._notify(message)

    # -- static tier ----------------------------------------------------------------------

    def render_all(self) -> None:
        template, vcs_ref, tasks = self.template, self.vcs_ref, self.tier == "full"
        if not tasks:
            # One clone of the template for the run, not one per variant (steps.fast_render)
            snapshot = template_snapshot(template, vcs_ref, self.root / "snapshot")
            if snapshot is not None:
                template, vcs_ref = snapshot, None
        jobs = [
            RenderJob(template, self.paths[v.id], v.answers, vcs_ref, tasks) for v in self.results
        ]
        self.phase(f"render 0/{len(jobs)}")
        if self.jobs > 1 and len(jobs) >= PARALLEL_RENDER_MIN:
            context = multiprocessing.get_context("spawn")
            workers = min(self.jobs, len(jobs))
            with ProcessPoolExecutor(workers, mp_context=context) as executor:
                for number, (variant, result) in enumerate(
                    zip(self.results, executor.map(render_job, jobs), strict=True), start=1
                ):
                    self.message = f"render {number}/{len(jobs)}: {variant.id}"
                    self.record(variant, result)
            return
        for number, (variant, job) in enumerate(zip(self.results, jobs, strict=True), start=1):
            self.message = f"render {number}/{len(jobs)}: {variant.id}"
            self.record(variant, render_job(job))

    def add_resources(self) -> None:
        """The `add-resources` step of each rendered variant, one variant at a time (Copier)."""
        self.phase("add-resources: the resource template")
        try:
            source = cached_resource_template(self.template, self.vcs_ref)
        except StepFailed as error:
            failed = StepResult(Step.ADD_RESOURCES, "failed", 0.0, error.output)
            for variant in self.results:
                self.record(variant, failed)
            return
        for number, variant in enumerate(self.results, start=1):
            if not variant.ok:
                self.record(variant, StepResult(Step.ADD_RESOURCES, "skipped"))
                continue
            self.message = f"add-resources {number}/{len(self.results)}: {variant.id}"
            resources = example_resources(variant.answers)
            action = partial(add_resources, self.paths[variant.id], resources, source)
            self.record(variant, run_step(Step.ADD_RESOURCES, action))

    def static(self) -> None:
        self.render_all()
        if self.options.resources:
            self.add_resources()
        rendered = [v for v in self.results if v.ok]
        for variant in self.results:
            if not variant.ok:  # its render (or resources) failed: the static steps are skipped
                for name in STATIC_STEPS[1:]:
                    self.record(variant, StepResult(name, "skipped"))
        projects = {v.id: self.paths[v.id] for v in rendered}
        self.phase(f"indexing the files of {len(projects)} variants")
        if not projects:
            return
        index = FileIndex(projects)
        with ThreadPoolExecutor(1) as background:
            # uv builds the shared environment while the linters run
            venv: Future[dict[str, str | StepFailed]]
            venv = background.submit(self.environments, index)
            self.batch(rendered, Step.NO_JINJA, lambda: no_jinja_files(index))
            layout = index.layout(self.root / "lint")
            layers = f"{layout.layer_count} layers, {len(index.distinct())} distinct files"
            self.batch(rendered, "ruff check", lambda: ruff_check_layers(index, layout), layers)
            self.batch(rendered, "ruff format", lambda: ruff_format_layers(index, layout), layers)
            pyc = self.root / "pyc"
            self.batch(rendered, Step.COMPILE, lambda: byte_compile_files(index, pyc))
            self.batch(
                rendered, Step.KUBERNETES, lambda: kubernetes_variants(projects, index.files)
            )
            self.phase("building the shared environment (uv)")
            pythons = venv.result()
        self.openapi(rendered, pythons, preload_modules(index))

    def batch(
        self,
        variants: Sequence[VariantResult],
        label: str,
        action: Callable[[], dict[str, StepResult]],
        detail: str = "",
    ) -> None:
        self.phase(f"{label}: {detail}" if detail else label)
        outcomes = action()
        for variant in variants:
            self.record(variant, outcomes[variant.id])

    def environments(self, index: FileIndex) -> dict[str, str | StepFailed]:
        """Per variant id, the Python of a shared environment with its dependencies (or why not).

        One environment for the union of every variant's dependencies; when that union cannot
        be installed, one per distinct dependency set.
        """
        sets: dict[str, list[str]] = {}
        for vid, keys in index.files.items():
            key = keys.get("pyproject.toml")
            try:
                sets[vid] = project_dependencies(index.sources[key]) if key else []
            except (OSError, ValueError):
                sets[vid] = []  # an invalid pyproject.toml fails the variant's own steps
        union = sorted({item for items in sets.values() for item in items})
        try:
            python = shared_environment(union, self.cache_dir, uv_cache=self.options.uv_cache)
        except StepFailed as error:
            if len({tuple(sorted(items)) for items in sets.values()}) <= 1:
                return dict.fromkeys(sets, error)
        else:
            return dict.fromkeys(sets, python)
        found: dict[str, str | StepFailed] = {}
        built: dict[tuple[str, ...], str | StepFailed] = {}
        for vid, items in sets.items():
            wanted = tuple(sorted(items))
            if wanted not in built:
                try:
                    built[wanted] = shared_environment(
                        wanted, self.cache_dir, uv_cache=self.options.uv_cache
                    )
                except StepFailed as error:
                    built[wanted] = error
            found[vid] = built[wanted]
        return found

    def openapi(
        self,
        variants: Sequence[VariantResult],
        pythons: Mapping[str, str | StepFailed],
        preload: Sequence[str],
    ) -> None:
        runners: dict[str, OpenAPIRunner] = {}
        for python in {p for p in pythons.values() if isinstance(p, str)}:
            runners[python] = OpenAPIRunner(
                python, workers=self.jobs, preload=preload, scratch=self.root / "openapi"
            )
        done = [0]
        todo = [v for v in variants if v.ok]
        self.phase(f"openapi 0/{len(todo)}: importing {len(preload)} modules in the workers")
        for variant in variants:
            if not variant.ok:
                self.record(variant, StepResult(Step.OPENAPI, "skipped"))

        def one(variant: VariantResult) -> None:
            project = self.paths[variant.id]
            python = pythons.get(variant.id)
            started = time.perf_counter()
            try:
                if isinstance(python, StepFailed) or python is None:
                    raise python or StepFailed("no shared environment")
                seen = self.variants[variant.id]
                if seen is None:
                    raise StepFailed("backforge could not read this variant from copier.yml")
                env = {"DATABASE_URL": database_of(seen).offline_url(project)}
                output = runners[python].run(project, env)
            except StepFailed as error:
                result = StepResult(
                    Step.OPENAPI, "failed", time.perf_counter() - started, error.output
                )
            else:
                result = StepResult(Step.OPENAPI, "passed", time.perf_counter() - started, output)
            with self._lock:
                done[0] += 1
                self.message = f"openapi {done[0]}/{len(todo)}: {variant.id}"
            self.record(variant, result)

        try:
            with ThreadPoolExecutor(self.jobs) as executor:
                list(executor.map(one, todo))
        finally:
            for runner in runners.values():
                runner.close()

    # -- full tier ------------------------------------------------------------------------

    def full(self) -> None:
        owned_pool = self.options.pool is None
        pool = self.options.pool or ServerPool()
        self.type_cache = SharedTypeCache(self.root / "mypy-cache")
        # Longest first: the last variant to start is then a short one, so the workers finish
        # together instead of one working alone through a long suite at the end.
        order = sorted(self.results, key=self.expected_cost, reverse=True)
        try:
            with ThreadPoolExecutor(self.jobs) as executor:
                list(executor.map(lambda v: self.full_variant(v, pool), order))
        finally:
            if owned_pool:
                pool.close()

    def measured(self, variant: VariantResult) -> bool:
        coverage = self.options.coverage
        return coverage(variant.answers) if callable(coverage) else coverage

    def expected_cost(self, variant: VariantResult) -> int:
        """What a variant's full-tier steps are expected to cost, to start the longest first:
        most of it is the project's suite, which grows with its tests' source (twice that
        under the coverage gate: its tracer doubles a suite's time). 0 for a failed variant."""
        if not variant.ok:
            return 0
        tests = self.paths[variant.id] / "tests"
        size = sum(path.stat().st_size for path in tests.rglob("*.py")) if tests.is_dir() else 0
        return size * (2 if self.measured(variant) else 1)

    def full_variant(self, variant: VariantResult, pool: ServerPool) -> None:
        project = self.paths[variant.id]
        resources = Resources(project, self.variants[variant.id], pool)

        def step(name: str, action: Callable[[], str | None]) -> None:
            if variant.ok:
                with self._lock:
                    self.message = f"{variant.id}: {name}"
                self.record(variant, run_step(name, action))
            else:
                self.record(variant, StepResult(name, "skipped"))

        try:
            step(Step.UV_SYNC, lambda: uv_sync(project, self.options.uv_cache))
            step(Step.MYPY, lambda: self.type_cache.mypy(project))
            step(Step.HADOLINT, lambda: hadolint(project))
            step(Step.CI_SCHEMA, lambda: ci_schema(project))
            step(
                Step.MIGRATIONS,
                lambda: migrations_round_trip(project, resources.database_url()),
            )
            measured = self.measured(variant)
            step(
                Step.PYTEST,
                lambda: project_pytest(
                    project, resources.database_url(), resources.extra_env(), coverage=measured
                ),
            )
        finally:
            resources.release()
            if variant.ok and not self.options.keep_venvs:
                shutil.rmtree(project / ".venv", ignore_errors=True)


@dataclass(frozen=True)
class _Model:
    """copier.yml's view of a run: the default answers (for the ids) and each variant's values
    (for the steps that depend on computed values, such as Redis)."""

    defaults: dict[str, Any] | None
    variants: list[Variant | None]


def _read_model(
    template: str, vcs_ref: str | None, variants: Sequence[Mapping[str, Any]]
) -> _Model:
    """The run's `_Model`. A template whose copier.yml backforge cannot read (a git URL that
    cannot be cloned, a copier.yml the model refuses) gives none; the steps that need a variant's
    values (openapi, the full tier's databases) then fail and say why. Any other error is a bug
    and propagates."""
    try:
        with template_checkout(template, vcs_ref) as folder:
            defaults = default_answers(folder)
            seen: list[Variant | None] = []
            for answers in variants:
                try:
                    seen.append(variant_of(folder, answers))
                except VariantError:
                    seen.append(None)
            return _Model(defaults, seen)
    except (UsageError, VariantError):
        return _Model(None, [None] * len(variants))


def run_check(
    template: str,
    variants: Sequence[Mapping[str, Any]],
    options: CheckOptions | None = None,
) -> list[VariantResult]:
    """Render each variant of `variants` from `template` and prove it; one result per variant.

    How it runs is a `CheckOptions` (`run_check(t, v, CheckOptions(tier="full", jobs=2))`).
    Results come in the order of `variants`; `exit_status(results)` is the CLI's exit code.
    """
    options = options or CheckOptions()
    if options.tier not in ("static", "full"):
        raise ValueError(f"unknown tier {options.tier!r}; expected static or full")
    if options.resources and options.tier != "full":
        raise ValueError("resources are added in the full tier only (tier='full')")
    temporary = options.work_dir is None
    root = options.work_dir or Path(tempfile.mkdtemp(prefix="backforge-check-"))
    root = root.resolve()
    for part in ("variants", "lint", "openapi", "pyc", "snapshot", "mypy-cache"):
        shutil.rmtree(root / part, ignore_errors=True)
    (root / "variants").mkdir(parents=True, exist_ok=True)
    model = _read_model(template, options.vcs_ref, variants)
    run = _Run(template, variants, options, root, model)
    try:
        run.static()
        if options.tier == "full":
            run.full()
        run.phase("done")
    finally:
        if temporary:
            shutil.rmtree(root, ignore_errors=True)
            for result in run.results:
                result.project = None
    return run.results
