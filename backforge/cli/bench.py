"""`backforge bench`: the rendered app against the hand-written floor app."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from backforge.bench import (
    DEFAULT_CONNECTIONS,
    DEFAULT_DURATION,
    DEFAULT_SET,
    DEFAULT_WORKERS,
    BenchError,
    compare_records,
    print_changes,
    print_result,
    run_bench,
    write_json,
)
from backforge.cli.common import (
    EXIT_FAILED,
    TemplateOption,
    VcsRefOption,
    console,
    errors,
    fail,
    say,
)
from backforge.errors import UsageError
from backforge.servers import ServiceError, ServiceUnavailable


def parse_connections(text: str) -> list[int]:
    """`64` or `64,256`: the connection counts to measure, in order (each at least 1)."""
    try:
        counts = [int(part) for part in text.split(",") if part.strip()]
    except ValueError as exc:
        raise UsageError(
            f"--connections takes counts separated by commas (64,256), not {text!r}"
        ) from exc
    if not counts or min(counts) < 1:
        raise UsageError(f"--connections needs counts of at least 1, not {text!r}")
    return list(dict.fromkeys(counts))


def read_record(path: Path) -> dict[str, Any]:
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UsageError(f"--compare: cannot read {path}: {exc}") from exc
    if not isinstance(record, dict):
        raise UsageError(f"--compare: {path} is not a backforge bench record")
    try:
        compare_records(record, record)  # refuse a file that is not a record before the run
    except (ValueError, KeyError, TypeError) as exc:
        raise UsageError(f"--compare: {path}: {exc}") from exc
    return record


def bench(
    template: TemplateOption = None,
    set_: Annotated[
        str,
        typer.Option(
            "--set",
            help="Variants to bench: answers such as database=postgresql,auth=jwt, or a set "
            "(preset:NAME, presets, sample:N ...); PostgreSQL variants only.",
        ),
    ] = DEFAULT_SET,
    duration: Annotated[
        float,
        typer.Option("--duration", min=1, help="Seconds per measured wrk run (whole seconds)."),
    ] = DEFAULT_DURATION,
    connections: Annotated[
        str,
        typer.Option(
            "--connections",
            help="Concurrent connections (wrk -c); a list such as 64,256 measures each.",
        ),
    ] = ",".join(map(str, DEFAULT_CONNECTIONS)),
    workers: Annotated[
        int,
        typer.Option(
            "--workers", min=1, help="uvicorn worker processes, for the app and the floor alike."
        ),
    ] = DEFAULT_WORKERS,
    json_file: Annotated[
        Path | None, typer.Option("--json", help="Also write the results to FILE as JSON.")
    ] = None,
    compare: Annotated[
        Path | None,
        typer.Option(
            "--compare",
            help="A previous --json record: print what changed; exit 1 when an endpoint needs "
            "more database round trips per request than it did.",
        ),
    ] = None,
    vcs_ref: VcsRefOption = None,
) -> None:
    """Benchmark the rendered app against a hand-written floor app (wrk, real PostgreSQL)."""
    try:
        counts = parse_connections(connections)
        previous = read_record(compare) if compare is not None else None
        with errors.status("benchmarking") as status:
            result = run_bench(
                template,
                set_,
                duration=duration,
                connections=counts,
                workers=workers,
                on_progress=lambda message: status.update(escape(message)),
                vcs_ref=vcs_ref,
            )
    except (UsageError, ServiceUnavailable) as exc:
        raise fail(str(exc)) from exc
    except (BenchError, ServiceError) as exc:
        raise fail(f"the benchmark failed: {exc}", EXIT_FAILED) from exc
    print_result(result, console)
    if json_file is not None:
        write_json(result, json_file)
        say(f"wrote {json_file}")
    if previous is not None:
        try:
            changes = compare_records(previous, result.to_dict())
        except ValueError as exc:
            raise fail(f"--compare: {exc}") from exc
        print_changes(changes, console)
        if any(change.regression for change in changes):
            raise fail("more database round trips per request than the previous run", EXIT_FAILED)
