"""`backforge check`: render every variant of a set and prove it (exit 1 if any fails)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Annotated

import typer

from backforge.check import CheckOptions, Tier, exit_status, run_check
from backforge.cli.common import SetOption, TemplateOption, VcsRefOption, console, fail, say
from backforge.cli.variants import load_variants
from backforge.errors import UsageError
from backforge.model import VariantError, parse_shard, shard
from backforge.report import print_report, progress_bar, write_json, write_junit


def check(
    template: TemplateOption = None,
    tier: Annotated[
        Tier, typer.Option("--tier", help="static: render and lint; full: also run everything.")
    ] = "static",
    set_: SetOption = "all",
    jobs: Annotated[int, typer.Option("--jobs", min=1, help="Variants run in parallel.")] = (
        os.cpu_count() or 1
    ),
    shard_: Annotated[
        str | None, typer.Option("--shard", help="I/N: run the I-th of N slices of the set.")
    ] = None,
    json_file: Annotated[
        Path | None, typer.Option("--json", help="Write one JSON record per variant.")
    ] = None,
    junit_file: Annotated[Path | None, typer.Option("--junit", help="Write JUnit XML.")] = None,
    vcs_ref: VcsRefOption = None,
    with_resources: Annotated[
        bool,
        typer.Option(
            "--with-resources",
            help="Full tier: add two resources (customer with every field type, invoice "
            "referring to it) to each variant before its checks.",
        ),
    ] = False,
) -> None:
    """Render every variant of a set and prove it works (exit 1 if any fails)."""
    if with_resources and tier != "full":
        raise fail("--with-resources needs --tier full (resources are checked by the full tier)")
    try:
        source, ref, selected, _ = load_variants(template, set_, vcs_ref)
        if shard_:
            index, count = parse_shard(shard_)
            selected = shard(selected, index, count)
    except (UsageError, VariantError) as exc:
        raise fail(str(exc)) from exc
    if not selected:
        say("no variants in this shard")
        return
    say(f"checking {len(selected)} variants ({set_}, {tier} tier, {jobs} jobs)")
    started = time.perf_counter()
    with progress_bar(console) as on_progress:
        options = CheckOptions(
            tier=tier,
            jobs=jobs,
            on_progress=on_progress,
            vcs_ref=ref,
            resources=with_resources,
        )
        results = run_check(source, selected, options)
    print_report(results, console, seconds=time.perf_counter() - started)
    if json_file:
        write_json(json_file, results)
    if junit_file:
        write_junit(junit_file, results)
    raise typer.Exit(exit_status(results))
