"""mirakuru's executors, with its exit hook made exact.

mirakuru marks every process it starts with `mirakuru_uuid=<pid of the starter>:<uuid4>` and, at
the exit of any Python process that imported it, SIGKILLs every process whose mark merely
*contains* the exiting process's pid. Process ids wrap at 32,768 on the machines CI runs on, so a
`backforge` subprocess or a spawned `check` worker that exits as pid 606 killed every server that
a pytest process with pid 6069 had started (and a pid such as 4018 kills whichever server's
uuid4 holds those digits). Redis escaped because it overwrites its environment with its process
title; PostgreSQL, MariaDB and uvicorn did not.

Importing this module replaces that hook with one that kills only what this very process
started and left running: the marks that begin with `<this pid>:`. Every module of backforge
that uses mirakuru imports its executors from here.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal

import mirakuru.base
import psutil
from mirakuru import HTTPExecutor, SimpleExecutor, TCPExecutor

__all__ = ["HTTPExecutor", "SimpleExecutor", "TCPExecutor", "leftovers_of", "owner_mark"]

MARK = mirakuru.base.ENV_UUID
"""The environment variable mirakuru sets on every process it starts."""


def owner_mark(pid: int) -> str:
    """How the marks of the processes that process `pid` started begin."""
    return f"{pid}:"


def leftovers_of(pid: int) -> list[int]:
    """The live processes that process `pid` started with mirakuru, and their children."""
    prefix = owner_mark(pid)
    found = []
    for process in psutil.process_iter():
        if process.pid == pid:
            continue
        try:
            mark = process.environ().get(MARK, "")
        except (psutil.Error, OSError):  # gone, or not ours to read
            continue
        if mark.startswith(prefix):
            found.append(process.pid)
    return found


def _kill_leftovers() -> None:
    for pid in leftovers_of(os.getpid()):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


atexit.unregister(mirakuru.base.cleanup_subprocesses)
atexit.register(_kill_leftovers)
