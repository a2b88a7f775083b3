"""The app under a real uvicorn process, on a free loopback port, for tests that need processes."""

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.support.ports import free_port

ROOT = Path(__file__).resolve().parents[2]  # the project
START_SECONDS = 90  # a loaded CI machine imports slowly
# Over `.env`: the server must not create the first superuser in the suite's database (the
# suite's own admin has another password).
QUIET = {"ENVIRONMENT": "test", "FIRST_SUPERUSER_PASSWORD": ""}


class Uvicorn:
    def __init__(
        self, target: str, env: Mapping[str, str], log: Path, port: int | None = None
    ) -> None:
        """Start `target` on `port` (a free one when None: a restart passes the old one)."""
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        command = [sys.executable, "-m", "uvicorn", target, "--host", "127.0.0.1"]
        with log.open("wb") as output:
            self.process = subprocess.Popen(  # noqa: S603  (our own interpreter and arguments)
                [*command, "--port", str(self.port)],
                cwd=ROOT,
                env={**os.environ, **QUIET, **env},
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        self.pid = self.process.pid
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"uvicorn exited:\n{log.read_text()}")
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.1)
        self.stop(signal.SIGKILL)
        raise RuntimeError(f"uvicorn did not answer within {START_SECONDS} s:\n{log.read_text()}")

    def stop(self, how: signal.Signals = signal.SIGTERM) -> int:
        """Send `how` (SIGTERM: a graceful shutdown, lifespan included) and wait for the exit."""
        if self.process.poll() is None:
            self.process.send_signal(how)
        return self.process.wait(timeout=START_SECONDS)


@contextmanager
def uvicorn(target: str, env: Mapping[str, str], log: Path) -> Iterator[Uvicorn]:
    server = Uvicorn(target, env, log)
    try:
        yield server
    finally:
        if server.process.poll() is None:
            server.stop(signal.SIGKILL)
