"""wrk: finding it, running it against one server, and reading its report."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from backforge.bench.processes import BenchError, CpuLayout
from backforge.errors import UsageError

WRK_TIMEOUT = "2s"
"""A request slower than this counts as a socket timeout (an error)."""
WRK_INSTALL_HINT = "apt-get install -y wrk"


class WrkNotFound(UsageError):
    """wrk is not installed; the message says how to install it."""


_TIME_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}
_LATENCY_LINE = re.compile(r"^\s*(50|75|90|99)(?:\.0+)?%\s+([\d.]+)(us|ms|s|m|h)\s*$", re.M)
_REQUESTS_LINE = re.compile(r"^\s*(\d+) requests in ([\d.]+)(us|ms|s|m|h)", re.M)
_RPS_LINE = re.compile(r"^Requests/sec:\s+([\d.]+)", re.M)
_SOCKET_LINE = re.compile(
    r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", re.M
)
_NON_2XX_LINE = re.compile(r"Non-2xx or 3xx responses: (\d+)", re.M)


@dataclass(frozen=True)
class WrkStats:
    """What one wrk run measured. Latencies in milliseconds, by percentile (50, 75, 90, 99)."""

    requests: int
    seconds: float
    rps: float
    latency_ms: Mapping[int, float]
    non_2xx: int = 0
    socket_errors: Mapping[str, int] = field(
        default_factory=lambda: {"connect": 0, "read": 0, "write": 0, "timeout": 0}
    )

    @property
    def errors(self) -> int:
        """Non-2xx/3xx answers plus socket errors (connect, read, write, timeout)."""
        return self.non_2xx + sum(self.socket_errors.values())

    @property
    def p50_ms(self) -> float:
        return self.latency_ms[50]

    @property
    def p99_ms(self) -> float:
        return self.latency_ms[99]

    def to_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "seconds": self.seconds,
            "rps": self.rps,
            "latency_ms": {f"p{key}": value for key, value in sorted(self.latency_ms.items())},
            "non_2xx": self.non_2xx,
            "socket_errors": dict(self.socket_errors),
            "errors": self.errors,
        }


def parse_wrk(output: str) -> WrkStats:
    """Parse the report of `wrk --latency`; raise ValueError when it is not one."""
    rps = _RPS_LINE.search(output)
    requests = _REQUESTS_LINE.search(output)
    latencies = {int(p): float(v) * _TIME_UNITS[u] for p, v, u in _LATENCY_LINE.findall(output)}
    if rps is None or requests is None:
        raise ValueError(f"not a wrk report (no Requests/sec line):\n{output.strip()[-2000:]}")
    missing = {50, 75, 90, 99} - set(latencies)
    if missing:
        raise ValueError(
            f"the wrk report has no latency distribution for {sorted(missing)} "
            "(was --latency given?)"
        )
    socket = _SOCKET_LINE.search(output)
    socket_errors = dict.fromkeys(("connect", "read", "write", "timeout"), 0)
    if socket is not None:
        socket_errors = dict(zip(socket_errors, map(int, socket.groups()), strict=True))
    non_2xx = _NON_2XX_LINE.search(output)
    count, amount, unit = requests.groups()
    return WrkStats(
        requests=int(count),
        seconds=float(amount) * _TIME_UNITS[unit] / 1000,
        rps=float(rps.group(1)),
        latency_ms=latencies,
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        socket_errors=socket_errors,
    )


def find_wrk() -> str:
    """The wrk binary, or WrkNotFound saying how to install it."""
    found = shutil.which("wrk")
    if found is None:
        raise WrkNotFound(
            "wrk (the HTTP load generator) is not installed. Install it with "
            f"`{WRK_INSTALL_HINT}` (Debian/Ubuntu; `brew install wrk` on macOS), "
            "or put it on PATH."
        )
    return found


def run_wrk(
    wrk: str,
    url: str,
    *,
    seconds: float,
    connections: int,
    threads: int,
    cpus: Sequence[int],
    headers: Mapping[str, str],
    script: Path | None,
) -> WrkStats:
    command = [
        *CpuLayout.prefix(cpus),
        wrk,
        "--latency",
        "-t",
        str(threads),
        "-c",
        str(connections),
        "-d",
        f"{max(1, round(seconds))}s",
        "--timeout",
        WRK_TIMEOUT,
    ]
    if script is not None:
        command += ["-s", str(script)]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    command.append(url)
    try:
        result = subprocess.run(
            command, capture_output=True, text=True, timeout=seconds + 60, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"wrk did not finish: {' '.join(command)}") from exc
    if result.returncode != 0:
        raise BenchError(f"wrk exited {result.returncode}:\n{result.stdout}{result.stderr}")
    try:
        return parse_wrk(result.stdout)
    except ValueError as exc:
        raise BenchError(str(exc)) from exc
