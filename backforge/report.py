"""What `backforge check` shows and writes: a progress bar, a summary, failures, JSON, JUnit XML.

- `progress_bar(console)`: a rich progress bar; yields the `on_progress` callback of `run_check`.
- `print_report(results, console)`: a summary table, then for every failure the variant's
  answers, the failing step with the tail of its output, and the command that reproduces it.
- `write_json(path, results)`: one record per variant (docs/architecture.md, "check's
  records"): id, answers, tier, ok, each step's name, status and seconds (the output tail of a
  failed step), the reproduce command.
- `write_junit(path, results)`: JUnit XML for CI systems: one testsuite per tier, one testcase
  per variant, a failure naming the step with the tail of its output.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.measure import Measurement
from rich.panel import Panel
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.segment import Segments
from rich.table import Table
from rich.text import Text

from backforge.model import yaml_flow
from backforge.steps.results import CheckProgress, VariantResult

__all__ = [
    "MAX_TABLE_ROWS",
    "failure_panel",
    "junit_xml",
    "print_report",
    "print_unclipped",
    "progress_bar",
    "summary_line",
    "summary_table",
    "to_record",
    "to_records",
    "write_json",
    "write_junit",
]

MAX_TABLE_ROWS = 60
"""Rows of the summary table; beyond them passing variants are counted, not listed."""

# Characters that XML 1.0 forbids (ANSI escapes from tool output among them).
_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


# ---------------------------------------------------------------------------------------------
# JSON
# ---------------------------------------------------------------------------------------------


def to_record(result: VariantResult) -> dict[str, Any]:
    """One variant as a JSON-ready mapping."""
    failed = result.failed
    steps: list[dict[str, Any]] = []
    for step in result.steps:
        item: dict[str, Any] = {
            "name": step.name,
            "status": step.status,
            "seconds": round(step.seconds, 3),
        }
        if step.status == "failed":
            item["output"] = step.tail
        steps.append(item)
    return {
        "id": result.id,
        "tier": result.tier,
        "ok": result.ok,
        "answers": result.answers,
        "seconds": round(result.seconds, 3),
        "failed_step": failed.name if failed else None,
        "steps": steps,
        "reproduce": result.reproduce,
    }


def to_records(results: Sequence[VariantResult]) -> list[dict[str, Any]]:
    return [to_record(result) for result in results]


def write_json(path: Path, results: Sequence[VariantResult]) -> None:
    """Write a JSON list with one record per variant (see `to_record`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(to_records(results), indent=2, default=str)
    path.write_text(text + "\n", encoding="utf-8")


# ---------------------------------------------------------------------------------------------
# JUnit XML
# ---------------------------------------------------------------------------------------------


def _xml_text(text: str) -> str:
    return _XML_INVALID.sub("", text)


def _answers_text(answers: dict[str, Any]) -> str:
    return "\n".join(f"{key}: {yaml_flow(value)}" for key, value in answers.items())


def junit_xml(results: Sequence[VariantResult], *, name: str = "backforge check") -> str:
    """JUnit XML: one testsuite per tier, one testcase per variant (classname `backforge.TIER`)."""
    root = ET.Element("testsuites", name=name)
    tiers = list(dict.fromkeys(result.tier for result in results))
    total_failures = 0
    total_seconds = 0.0
    for tier in tiers:
        members = [result for result in results if result.tier == tier]
        failures = sum(not result.ok for result in members)
        seconds = sum(result.seconds for result in members)
        total_failures += failures
        total_seconds += seconds
        suite = ET.SubElement(
            root,
            "testsuite",
            name=f"{name} ({tier} tier)",
            tests=str(len(members)),
            failures=str(failures),
            errors="0",
            skipped="0",
            time=f"{seconds:.3f}",
        )
        for result in members:
            case = ET.SubElement(
                suite,
                "testcase",
                classname=f"backforge.{tier}",
                name=result.id,
                time=f"{result.seconds:.3f}",
            )
            failed = result.failed
            if failed is not None:
                failure = ET.SubElement(
                    case,
                    "failure",
                    message=f"step {failed.name} failed; reproduce: {result.reproduce}",
                    type=failed.name,
                )
                failure.text = _xml_text(failed.tail)
            steps = "\n".join(
                f"{step.name}: {step.status} ({step.seconds:.2f}s)" for step in result.steps
            )
            out = ET.SubElement(case, "system-out")
            out.text = _xml_text(
                f"{_answers_text(result.answers)}\n\n{steps}\n\nreproduce: {result.reproduce}\n"
            )
    root.set("tests", str(len(results)))
    root.set("failures", str(total_failures))
    root.set("errors", "0")
    root.set("time", f"{total_seconds:.3f}")
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def write_junit(path: Path, results: Sequence[VariantResult]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(junit_xml(results), encoding="utf-8")


# ---------------------------------------------------------------------------------------------
# The console: progress, summary table, failures
# ---------------------------------------------------------------------------------------------


@contextmanager
def progress_bar(console: Console | None = None) -> Iterator[Callable[[CheckProgress], None]]:
    """A rich progress bar for the duration of the block; yields `run_check`'s `on_progress`."""
    progress = Progress(
        SpinnerColumn(),
        TextColumn("{task.description}", style="bold"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("steps"),
        TextColumn("[green]{task.fields[passed]} passed[/] [red]{task.fields[failed]} failed[/]"),
        TimeElapsedColumn(),
        TextColumn("{task.fields[message]}", style="dim", markup=False),
        console=console,
        transient=False,
    )
    task = progress.add_task("check", total=None, passed=0, failed=0, message="")

    def update(event: CheckProgress) -> None:
        progress.update(
            task,
            completed=event.completed,
            total=event.total,
            passed=event.passed,
            failed=event.failed,
            message=event.message[:60],
        )

    with progress:
        yield update


def print_unclipped(console: Console, renderable: RenderableType) -> None:
    """Print `renderable` (a table) whole. On a terminal rich fits it to the window; into a pipe
    or a file it is printed at its natural width, so that no cell is cut (`sqlite-non…`)."""
    if console.is_terminal:
        console.print(renderable)
        return
    natural = Measurement.get(console, console.options.update_width(1_000_000), renderable)
    options = console.options.update_width(max(console.width, natural.maximum))
    console.print(Segments(console.render(renderable, options)), soft_wrap=True, crop=False)


def summary_table(results: Sequence[VariantResult], *, max_rows: int = MAX_TABLE_ROWS) -> Table:
    """One row per variant (failures first when there are more than `max_rows`)."""
    tiers = ", ".join(dict.fromkeys(result.tier for result in results)) or "no"
    table = Table(title=f"backforge check: {tiers} tier", title_justify="left")
    table.add_column("Variant", no_wrap=True)
    table.add_column("Result")
    table.add_column("Failed step")
    table.add_column("Steps", justify="right")
    table.add_column("Seconds", justify="right")
    rows = list(results)
    if len(rows) > max_rows:
        rows = [r for r in results if not r.ok] + [r for r in results if r.ok]
    shown = rows[:max_rows]
    for result in shown:
        failed = result.failed
        passed = sum(step.status == "passed" for step in result.steps)
        table.add_row(
            result.id,
            Text("passed", style="green") if result.ok else Text("FAILED", style="bold red"),
            failed.name if failed else "",
            f"{passed}/{len(result.steps)}",
            f"{result.seconds:.1f}",
        )
    hidden = rows[max_rows:]
    if hidden:
        failed_hidden = sum(not result.ok for result in hidden)
        note = f"... {len(hidden)} more ({failed_hidden} failed)"
        table.add_row(Text(note, style="dim"), "", "", "", "")
    return table


def failure_panel(result: VariantResult) -> Panel:
    """A failure: the variant's answers, the failing step and its output tail, the reproducer."""
    failed = result.failed
    parts: list[Text] = [
        Text("answers", style="bold"),
        Text(_answers_text(result.answers)),
        Text(""),
    ]
    if failed is not None:
        parts += [
            Text.assemble(
                ("failed step: ", "bold"), (failed.name, "bold red"), f" ({failed.seconds:.1f}s)"
            ),
            Text(failed.tail or "(no output)", style="dim"),
            Text(""),
        ]
    parts.append(Text.assemble(("reproduce: ", "bold"), result.reproduce))
    return Panel(Group(*parts), title=f"[red]{result.id}[/]", title_align="left")


def summary_line(results: Sequence[VariantResult], seconds: float | None = None) -> str:
    """`3 variants: 2 passed, 1 failed in 12.3 s (14.6 variants/min)`."""
    failed = sum(not result.ok for result in results)
    line = f"{len(results)} variants: {len(results) - failed} passed, {failed} failed"
    if seconds is not None:
        rate = len(results) / seconds * 60 if seconds > 0 else 0.0
        line += f" in {seconds:.1f} s ({rate:.1f} variants/min)"
    return line


def print_report(
    results: Sequence[VariantResult],
    console: Console,
    *,
    seconds: float | None = None,
    max_rows: int = MAX_TABLE_ROWS,
) -> None:
    """The summary table, a panel per failure, and the summary line (`seconds`: wall time)."""
    print_unclipped(console, summary_table(results, max_rows=max_rows))
    for result in results:
        if not result.ok:
            console.print(failure_panel(result))
    style = "bold green" if all(result.ok for result in results) else "bold red"
    console.print(Text(summary_line(results, seconds), style=style))
