"""Printing a bench result: one table per variant that fits 80 columns, then the targets."""

from __future__ import annotations

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from backforge.bench.results import (
    COLD_STARTS,
    FIRST_REQUEST_ENDPOINT,
    STEADY_REQUESTS,
    BenchResult,
    Change,
    VariantBench,
)


def _number(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def print_result(result: BenchResult, console: Console) -> None:
    """One table per variant (two rows per endpoint: the app, then the floor; it fits 80
    columns), then the cold starts and the targets."""
    pinning = (
        f"server on CPU {','.join(map(str, result.app_cpus))}, "
        f"wrk and PostgreSQL on CPU {','.join(map(str, result.load_cpus))}"
        if result.app_cpus
        else "no CPU pinning"
    )
    workers = f"{result.workers} worker{'s' if result.workers > 1 else ''} each, "
    for variant in result.variants:
        for connections in variant.connection_counts:
            console.print(
                escape(
                    f"backforge bench: {variant.variant} -- {connections} connections, "
                    f"{workers}{result.duration_s:g} s x {result.rounds} rounds, {pinning}"
                ),
                style="bold",
            )
            table = Table(
                box=box.SIMPLE_HEAD,
                pad_edge=False,
                collapse_padding=True,
                caption="ratio: app/floor req/s; medians over rounds; CPU: µs per request; "
                "DB: database round trips per request (statements counted by "
                "pg_stat_statements over sequential requests)",
            )
            table.add_column("endpoint", no_wrap=True)
            for column in ("req/s", "ratio", "p50 ms", "p99 ms", "errors", "CPU µs", "DB", "RSS"):
                table.add_column(column, justify="right")
            for e in variant.at(connections):
                wanted = variant.target_ratio(e.endpoint)
                style = "" if wanted is None else ("green" if e.ratio >= wanted else "red")
                for side, measured in (("app", e.app), ("floor", e.floor)):
                    table.add_row(
                        f"{e.endpoint.name} {side}",
                        f"{measured.rps:,.0f}",
                        Text(f"{e.ratio:.2f}", style=style) if side == "app" else "",
                        _number(measured.p50_ms, 2),
                        _number(measured.p99_ms, 2),
                        str(measured.errors),
                        _number(measured.cpu_us_per_request, 0),
                        _number(measured.round_trips, 1),
                        _number(measured.rss_mb, 0),
                        end_section=side == "floor",
                    )
            console.print(table)
            _print_cache_lookups(variant, connections, console)
        console.print(
            f"cold start (launch to first /health 200, median of {COLD_STARTS}): "
            f"app {variant.app_cold_start_s:.2f} s, floor {variant.floor_cold_start_s:.2f} s"
            f"{_stack_imports(variant)}",
            highlight=False,
        )
        _print_first_requests(variant, console)
        for target in variant.targets():
            mark = "[green]met[/]" if target.met else "[red]missed[/]"
            detail = f" ({target.detail})" if target.detail else ""
            console.print(f"  {mark}  {escape(target.name + detail)}", highlight=False)
        for note in variant.notes:
            console.print(f"[yellow]note:[/] {escape(note)}", highlight=False)
    for line in result.skipped:
        console.print(f"[yellow]skipped[/] {escape(line)}", highlight=False)


def _stack_imports(variant: VariantBench) -> str:
    """The time to import the stack app.main loads, when measured."""
    if variant.stack_import_s is None:
        return ""
    return (
        f"; importing the {len(variant.stack_packages)} third-party packages app.main loads "
        f"(gc off, launch to the last import, median of {COLD_STARTS}): "
        f"{variant.stack_import_s:.2f} s"
    )


def _print_cache_lookups(variant: VariantBench, connections: int, console: Console) -> None:
    """Redis keyspace hits and misses per app request, by endpoint (variants with Redis)."""
    lookups = []
    for e in variant.at(connections):
        counted = e.app.cache_per_request
        if counted is not None and any(counted):
            hits, misses = counted
            ratio = e.app.cache_hit_ratio or 0.0
            lookups.append(f"{e.endpoint.name} {hits:.2f} hits + {misses:.2f} misses ({ratio:.2f})")
    if lookups:
        console.print(
            "cache: Redis keyspace lookups per app request over the measured rounds "
            f"(hit ratio): {'; '.join(lookups)}",
            highlight=False,
        )


def _print_first_requests(variant: VariantBench, console: Console) -> None:
    """The first two GET items after a launch against the same request on the warm server."""
    sides = [
        f"{name} {first.first_ms:,.1f} + {first.second_ms:,.1f} ms "
        f"(steady {first.steady_ms:,.1f} ms)"
        for name, first in (("app", variant.app_first), ("floor", variant.floor_first))
        if first is not None
    ]
    if not sides:
        return
    connect = (
        f"; database connect {variant.database_connect_ms:,.1f} ms"
        if variant.database_connect_ms is not None
        else ""
    )
    console.print(
        f"first and second {FIRST_REQUEST_ENDPOINT.name} after launch (medians of "
        f"{COLD_STARTS}; steady: median of {STEADY_REQUESTS} sequential): "
        f"{', '.join(sides)}{connect}",
        highlight=False,
    )


def print_changes(changes: list[Change], console: Console) -> None:
    """The comparison with the previous record: regressions first, in red."""
    if not changes:
        console.print("no endpoint in common with the previous record", highlight=False)
        return
    for change in sorted(changes, key=lambda c: not c.regression):
        style = "red" if change.regression else ""
        console.print(Text(change.describe(), style=style), highlight=False)
