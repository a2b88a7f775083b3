"""The benchmarked processes: one uvicorn server under a mirakuru executor, its CPU time and
resident memory (psutil), and CPU pinning."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import psutil
from mirakuru.exceptions import ProcessExitedWithError, ProcessFinishedWithError, TimeoutExpired

from backforge.errors import tail_lines
from backforge.executors import HTTPExecutor
from backforge.servers import (
    LOOPBACK,
    free_port,
)

START_TIMEOUT = 60.0
"""Seconds a server gets from launch to its first `/health` 200."""


class BenchError(RuntimeError):
    """The benchmark could not run (a server did not start, a step failed); exit 1."""


def _tree(pid: int) -> list[psutil.Process]:
    """A process and all its descendants (uvicorn's workers when it runs more than one)."""
    process = psutil.Process(pid)
    try:
        return [process, *process.children(recursive=True)]
    except psutil.Error:
        return [process]


def cpu_seconds(pid: int) -> float | None:
    """User plus system CPU time of a process and its descendants (all their threads); None when
    the process is gone. A worker that exits takes its time with it: sample around a run."""
    try:
        total = 0.0
        for member in _tree(pid):
            with contextlib.suppress(psutil.Error):
                times = member.cpu_times()
                total += times.user + times.system
    except psutil.Error:
        return None
    return total


def rss_mb(pid: int) -> float | None:
    """Resident memory of a process and its descendants in MiB; None when it is gone."""
    try:
        total = 0
        for member in _tree(pid):
            with contextlib.suppress(psutil.Error):
                total += member.memory_info().rss
    except psutil.Error:
        return None
    return float(total) / 2**20


def _children(pid: int) -> list[int]:
    try:
        return [child.pid for child in psutil.Process(pid).children()]
    except psutil.Error:
        return []


@contextlib.contextmanager
def pinned(pid: int | None, cpus: Sequence[int]) -> Iterator[None]:
    """Pin a process and its children to `cpus` (children forked later inherit it); restore
    the old affinity of the process and of its children on the way out."""
    saved: dict[int, set[int]] = {}
    if pid is not None and cpus and hasattr(os, "sched_setaffinity"):
        for member in [pid, *_children(pid)]:
            try:
                saved[member] = os.sched_getaffinity(member)
                os.sched_setaffinity(member, cpus)
            except OSError:  # gone, or not ours
                continue
    try:
        yield
    finally:
        if pid is not None and pid in saved:
            for member in {*saved, *_children(pid)}:
                with contextlib.suppress(OSError):
                    os.sched_setaffinity(member, saved.get(member, saved[pid]))


@dataclass(frozen=True)
class CpuLayout:
    """Which cores the servers (and which wrk) run on; empty lists mean no pinning."""

    server: list[int]
    load: list[int]

    @staticmethod
    def detect(workers: int = 1) -> CpuLayout:
        """One core per server worker, the others for wrk and the database; no pinning when
        that leaves nothing for the load (then everything shares every core)."""
        try:
            cpus = sorted(os.sched_getaffinity(0))
        except AttributeError:  # pragma: no cover - not Linux
            return CpuLayout([], [])
        if len(cpus) <= workers or shutil.which("taskset") is None:
            return CpuLayout([], [])
        return CpuLayout(server=cpus[:workers], load=cpus[workers:])

    @staticmethod
    def prefix(cpus: Sequence[int]) -> list[str]:
        return ["taskset", "-c", ",".join(map(str, cpus))] if cpus else []


class _Executor(HTTPExecutor):
    """mirakuru's HTTP executor with exactly the given environment (mirakuru adds its own to
    `os.environ`; the servers must not see what the caller left out, such as VIRTUAL_ENV)."""

    def __init__(self, command: list[str], url: str, env: Mapping[str, str], **kwargs: Any) -> None:
        super().__init__(command, url, envvars=dict(env), **kwargs)
        self._left_out = set(os.environ) - set(env)

    @property
    def envvars(self) -> dict[str, str]:
        inherited: dict[str, str] = super().envvars
        return {key: value for key, value in inherited.items() if key not in self._left_out}


class UvicornServer:
    """One uvicorn server (`workers` processes) serving `target` on a free loopback port, started
    by a mirakuru executor that waits for `GET /health` to answer 200 and stops the process group.
    """

    def __init__(
        self,
        name: str,
        python: str,
        target: str,
        app_dir: Path,
        env: Mapping[str, str],
        run_dir: Path,
        cpus: Sequence[int],
        workers: int = 1,
    ) -> None:
        self.name = name
        self.workers = workers
        self.python = python
        self.target = target
        self.app_dir = app_dir
        self.env = dict(env)
        self.run_dir = run_dir
        self.cpus = list(cpus)
        self.port = 0
        self.executor: _Executor | None = None
        self.log_path = run_dir / f"{name}.log"
        self._log: IO[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def pid(self) -> int:
        executor = self.executor
        if executor is None or executor.process is None:
            raise BenchError(f"the {self.name} server is not running")
        pid: int = executor.process.pid
        return pid

    def command(self) -> list[str]:
        return [
            *CpuLayout.prefix(self.cpus),
            self.python,
            "-m",
            "uvicorn",
            self.target,
            "--app-dir",
            str(self.app_dir),
            "--host",
            LOOPBACK,
            "--port",
            str(self.port),
            "--workers",
            str(self.workers),
            "--loop",
            "uvloop",
            "--http",
            "httptools",
            "--no-access-log",
            "--log-level",
            "warning",
        ]

    def start(self) -> float:
        """Launch the server; return seconds from launch to the first `/health` 200."""
        self.stop()
        self.port = free_port()
        self._log = self.log_path.open("ab")
        executor = _Executor(
            self.command(),
            f"{self.url}/health",
            self.env,
            method="GET",
            status=200,
            request_timeout=1,
            timeout=START_TIMEOUT,
            sleep=0.005,
            cwd=str(self.run_dir),  # no .env here: every setting comes from `env`
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        started = time.perf_counter()
        try:
            executor.start()
        except ProcessExitedWithError as exc:
            self._close_log()
            raise BenchError(
                f"the {self.name} server exited with {exc.exit_code}:\n{self.log_tail()}"
            ) from exc
        except TimeoutExpired as exc:
            executor.kill()
            self._close_log()
            raise BenchError(
                f"the {self.name} server did not answer /health within "
                f"{START_TIMEOUT:.0f}s:\n{self.log_tail()}"
            ) from exc
        except BaseException:
            executor.kill()
            self._close_log()
            raise
        self.executor = executor
        return time.perf_counter() - started

    def alive(self) -> bool:
        return self.executor is not None and self.executor.running()

    def stop(self) -> None:
        executor, self.executor = self.executor, None
        if executor is not None:
            try:
                executor.stop()
            except ProcessFinishedWithError:
                pass  # it had already exited; the caller checks alive() where that matters
            except BaseException:
                executor.kill()
                raise
        self._close_log()

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return tail_lines(text, lines) or "(empty log)"
