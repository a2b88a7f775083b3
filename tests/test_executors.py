"""backforge.executors: a Python process that exits kills what it started with mirakuru, and only
that (mirakuru's own exit hook matched any process whose mark contained the exiting pid's digits:
stop 40's CI lost every server of its pytest process that way)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from mirakuru.base_env import processes_with_env

from backforge.executors import MARK, SimpleExecutor, leftovers_of, owner_mark


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _run(script: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
    )


@pytest.fixture
def sleeper() -> Iterator[int]:
    """A process this test process started with mirakuru: its mark begins with our pid."""
    executor = SimpleExecutor(["sleep", "120"])
    executor.start()
    assert executor.process is not None
    try:
        yield executor.process.pid
    finally:
        executor.kill()


def test_leftovers_are_matched_by_their_owner_not_by_digits_they_share(sleeper: int) -> None:
    mine = os.getpid()
    assert psutil.Process(sleeper).environ()[MARK].startswith(owner_mark(mine))
    assert sleeper in leftovers_of(mine)

    # A pid whose digits sit inside our mark (ours without its last digit: 6069 -> 606).
    digits = str(mine)[:-1].lstrip("0")
    if not digits:
        pytest.skip(f"pid {mine} has no shorter pid inside it")
    # mirakuru's rule, which its exit hook applies to the exiting process's pid, takes it ...
    assert sleeper in processes_with_env(MARK, digits)
    # ... ours does not.
    assert sleeper not in leftovers_of(int(digits))


@pytest.mark.parametrize(
    "module",
    ["backforge.executors", "backforge.servers", "backforge.bench.processes", "backforge.cli"],
)
def test_mirakurus_own_exit_hook_does_not_run_in_a_process_that_imported_backforge(
    tmp_path: Path, module: str
) -> None:
    """mirakuru's hook looks its victims up through `processes_with_env` when the process exits:
    a recorder in its place must not be called, whichever of backforge's modules (the CLI's
    included) brought mirakuru in."""
    calls = tmp_path / "calls"
    script = f"""
        import mirakuru.base_env
        def record(name, value):
            with open({str(calls)!r}, "a") as out:
                out.write(f"{{name}}={{value}}\\n")
            return set()
        mirakuru.base_env.processes_with_env = record
        import {module}
        import os
        print(os.getpid())
    """
    result = _run(script, tmp_path)
    assert result.returncode == 0, result.stderr
    assert not calls.exists(), calls.read_text()

    # Without backforge's module the recorder is asked about the exiting pid: the check can fail.
    result = _run(script.replace(f"import {module}", "import mirakuru"), tmp_path)
    assert result.returncode == 0, result.stderr
    assert calls.read_text() == f"{MARK}={int(result.stdout)}\n"


def test_a_process_that_exits_kills_what_it_started_and_left_running(tmp_path: Path) -> None:
    script = """
        from backforge.executors import SimpleExecutor
        executor = SimpleExecutor(["sleep", "120"])
        executor.start()
        print(executor.process.pid, flush=True)
    """
    result = _run(script, tmp_path)
    assert result.returncode == 0, result.stderr
    orphan = int(result.stdout)
    deadline = time.monotonic() + 10
    while _alive(orphan):
        assert time.monotonic() < deadline, f"process {orphan} outlived the process that started it"
        time.sleep(0.05)
