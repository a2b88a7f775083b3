"""What a check produces: step results, variant results, progress (a leaf: it imports only
backforge.errors).

A variant's steps run in order; after its first failure the rest are recorded as skipped, so a
report always names the step that broke.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Final, Literal

from backforge.errors import tail_lines

Status = Literal["passed", "failed", "skipped"]
Tier = Literal["static", "full"]

OUTPUT_TAIL_LINES: Final = 40
"""Lines of a failed step's output that reports show."""


class Step(StrEnum):
    """The one registry of step names: reports, JSON records and JUnit name steps by these."""

    RENDER = "render"
    ADD_RESOURCES = "add-resources"
    NO_JINJA = "no-jinja"
    RUFF_CHECK = "ruff-check"
    RUFF_FORMAT = "ruff-format"
    COMPILE = "compile"
    KUBERNETES = "kubernetes"
    OPENAPI = "openapi"
    UV_SYNC = "uv-sync"
    MYPY = "mypy"
    HADOLINT = "hadolint"
    CI_SCHEMA = "ci-schema"
    MIGRATIONS = "migrations"
    PYTEST = "pytest"


STATIC_STEPS: Final = (
    Step.RENDER,
    Step.NO_JINJA,
    Step.RUFF_CHECK,
    Step.RUFF_FORMAT,
    Step.COMPILE,
    Step.KUBERNETES,
    Step.OPENAPI,
)
FULL_STEPS: Final = (
    *STATIC_STEPS,
    Step.UV_SYNC,
    Step.MYPY,
    Step.HADOLINT,
    Step.CI_SCHEMA,
    Step.MIGRATIONS,
    Step.PYTEST,
)
"""The steps of each tier, in the order they run."""


def tier_steps(tier: Tier, resources: bool = False) -> tuple[Step, ...]:
    """The steps of a tier, in order; `resources` (full tier only) adds the example resources
    right after the render, so that every later step checks them too."""
    steps = FULL_STEPS if tier == "full" else STATIC_STEPS
    return (steps[0], Step.ADD_RESOURCES, *steps[1:]) if resources else steps


def tail_of(text: str, lines: int = OUTPUT_TAIL_LINES) -> str:
    return tail_lines(text, lines)


@dataclass
class StepResult:
    name: str
    status: Status
    seconds: float = 0.0
    output: str = ""

    @property
    def tail(self) -> str:
        return tail_of(self.output)


class StepFailed(Exception):
    """A step failed; `output` says why (the tool's output, or the error)."""

    def __init__(self, output: str) -> None:
        super().__init__(output)
        self.output = output


def run_step(name: str, action: Callable[[], str | None]) -> StepResult:
    """Run one step and time it; StepFailed (or any error: a step's own bug must still name
    the step) makes it failed."""
    started = time.perf_counter()
    try:
        output = action() or ""
    except StepFailed as exc:
        return StepResult(name, "failed", time.perf_counter() - started, exc.output)
    except Exception as exc:
        message = f"{type(exc).__name__}: {exc}"
        return StepResult(name, "failed", time.perf_counter() - started, message)
    return StepResult(name, "passed", time.perf_counter() - started, output)


@dataclass
class VariantResult:
    """One variant's run: its answers, each step's result, and the command that reproduces it."""

    id: str
    answers: dict[str, Any]
    tier: Tier
    reproduce: str
    steps: list[StepResult] = field(default_factory=list)
    project: Path | None = None
    """Where it was rendered; None once the run's temporary work directory is gone."""

    @property
    def ok(self) -> bool:
        return all(step.status != "failed" for step in self.steps)

    @property
    def failed(self) -> StepResult | None:
        return next((step for step in self.steps if step.status == "failed"), None)

    @property
    def seconds(self) -> float:
        return sum(step.seconds for step in self.steps)


@dataclass(frozen=True)
class CheckProgress:
    """What `run_check` reports to `on_progress` (possibly from worker threads)."""

    completed: int
    """Step results recorded so far, skipped ones included."""
    total: int
    """Steps of the whole run: variants x steps of the tier."""
    passed: int
    """Variants finished with every step passed."""
    failed: int
    """Variants with a failed step (finished or not)."""
    message: str
    """What runs now, such as `ruff check: 3 layers` or `postgresql-jwt: pytest`."""


ProgressCallback = Callable[[CheckProgress], None]


def exit_status(results: Sequence[VariantResult]) -> int:
    """0 when every variant passed, else 1 (the CLI's exit code for a failed check)."""
    return 0 if all(result.ok for result in results) else 1
