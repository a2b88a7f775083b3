"""`backforge bench`: the rendered app against the hand-written floor app."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from backforge.bench import (
    DEFAULT_CONNECTIONS,
    DEFAULT_DURATION,
    DEFAULT_SET,
    BenchError,
    print_result,
    run_bench,
    write_json,
)
from backforge.cli.common import EXIT_FAILED, TemplateOption, console, errors, fail, say
from backforge.errors import UsageError
from backforge.servers import ServiceError, ServiceUnavailable


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
        int, typer.Option("--connections", min=1, help="Concurrent connections (wrk -c).")
    ] = DEFAULT_CONNECTIONS,
    json_file: Annotated[
        Path | None, typer.Option("--json", help="Also write the results to FILE as JSON.")
    ] = None,
) -> None:
    """Benchmark the rendered app against a hand-written floor app (wrk, real PostgreSQL)."""
    try:
        with errors.status("benchmarking") as status:
            result = run_bench(
                template,
                set_,
                duration=duration,
                connections=connections,
                on_progress=lambda message: status.update(escape(message)),
            )
    except (UsageError, ServiceUnavailable) as exc:
        raise fail(str(exc)) from exc
    except (BenchError, ServiceError) as exc:
        raise fail(f"the benchmark failed: {exc}", EXIT_FAILED) from exc
    print_result(result, console)
    if json_file is not None:
        write_json(result, json_file)
        say(f"wrote {json_file}")
