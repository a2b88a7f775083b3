"""The OpenAPI step: import each variant's `app.main` and build its OpenAPI document, in a child
forked from a process that has already imported the heavy modules, inside one shared uv
environment holding every variant's dependencies (cached by a hash of that set)."""

from __future__ import annotations

import ast
import contextlib
import fcntl
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import IO, Any, Final

from backforge.commands import uv_binary
from backforge.steps.results import StepFailed
from backforge.steps.static import FileIndex, sha256_hex
from backforge.steps.tools import run_tool, unique_name, uv_env

ENV_MAX_AGE_DAYS: Final = 14.0
"""Shared environments unused for this long are removed when a new one is built."""

OPENAPI_TIMEOUT: Final = 120
"""Seconds one variant's import and OpenAPI build may take."""

OPENAPI_CODE: Final = (
    "import json\n"
    "import app.main as main\n"
    "application = getattr(main, 'app', None) or main.create_app()\n"
    "doc = application.openapi()\n"
    "assert doc['paths'], 'no paths in the OpenAPI document'\n"
    "print(len(doc['paths']), 'paths', len(json.dumps(doc)), 'bytes')\n"
)
"""Import `app.main` and build the OpenAPI document of the module's `app` (else `create_app()`)."""


OPENAPI_ENV: Final = {
    "ARGON2_TIME_COST": "1",
    "ARGON2_MEMORY_COST_KIB": "1024",
    "ARGON2_PARALLELISM": "1",
}
"""Settings for the import: `create_app` hashes a dummy password (the equal-time login path);
with the production argon2 cost that hash was a third of a variant's OpenAPI step. The document
does not depend on it. Names that a variant does not define are ignored by its settings."""


def default_cache_dir() -> Path:
    """Where shared environments are kept between runs: `$XDG_CACHE_HOME/backforge`."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "backforge"


def project_dependencies(pyproject: Path) -> list[str]:
    """The `[project].dependencies` of a pyproject.toml."""
    data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    project = data.get("project")
    dependencies = project.get("dependencies", []) if isinstance(project, dict) else []
    return [str(item) for item in dependencies]


def shared_environment(
    requirements: Sequence[str],
    cache_dir: Path,
    *,
    uv_cache: Path | None = None,
    python: str = sys.executable,
) -> str:
    """A virtual environment with `requirements` installed; returns its Python.

    Built once with uv under `cache_dir/envs/<hash of the requirements and Python>` and reused
    by later runs; concurrent runs wait for each other (a file lock). Its packages are compiled
    to bytecode as they are installed: the OpenAPI workers write none (PYTHONDONTWRITEBYTECODE),
    so without it every run compiled fastapi, pydantic and SQLAlchemy again in every worker. Raises
    StepFailed with uv's output when the requirements cannot be installed.
    """

    wanted = sorted(set(requirements))
    version = ".".join(str(part) for part in sys.version_info[:3])
    identity = {"python": [python, version], "requirements": wanted, "bytecode": "compiled"}
    key = sha256_hex(json.dumps(identity).encode())
    envs = cache_dir / "envs"
    envs.mkdir(parents=True, exist_ok=True)
    directory = envs / key[:16]
    marker = directory / ".backforge-complete"
    interpreter = directory / "bin" / "python"
    with (envs / f"{key[:16]}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if marker.exists() and interpreter.exists():
            marker.touch()
            return str(interpreter)
        shutil.rmtree(directory, ignore_errors=True)
        uv = uv_binary()
        env = uv_env(uv_cache)
        run_tool([uv, "venv", "--quiet", "--python", python, str(directory)], envs, env=env)
        requirements_file = directory / "requirements.in"
        requirements_file.write_text("\n".join(wanted) + "\n", encoding="utf-8")
        try:
            install = [uv, "pip", "install", "--quiet", "--compile-bytecode"]
            install += ["--python", str(interpreter)]
            run_tool([*install, "-r", str(requirements_file)], envs, env=env)
        except StepFailed:
            shutil.rmtree(directory, ignore_errors=True)
            raise
        marker.write_text(json.dumps(wanted, indent=1) + "\n", encoding="utf-8")
    _prune_environments(envs)
    return str(interpreter)


def _prune_environments(envs: Path, max_age_days: float = ENV_MAX_AGE_DAYS) -> None:
    """Remove shared environments that no run has used for `max_age_days` (best effort)."""
    deadline = time.time() - max_age_days * 86400
    for marker in envs.glob("*/.backforge-complete"):
        with contextlib.suppress(OSError):
            if marker.stat().st_mtime < deadline:
                shutil.rmtree(marker.parent)
                (envs / f"{marker.parent.name}.lock").unlink(missing_ok=True)


_ZYGOTE: Final = r"""
import importlib, json, os, signal, sys, traceback

def child(request):
    code = 1
    try:
        nothing = os.open(os.devnull, os.O_RDONLY)
        os.dup2(nothing, 0)
        os.close(nothing)
        fd = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.close(fd)
        signal.alarm(int(request["timeout"]))
        os.chdir(request["cwd"])
        sys.path.insert(0, request["cwd"])
        os.environ.update(request["env"])
        exec(compile(request["code"], "<openapi>", "exec"), {"__name__": "__main__"})
        code = 0
        learned(request)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
    except BaseException:
        traceback.print_exc()
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)

def learned(request):
    # Tell the zygote which third-party modules this child imported (a warmer next child).
    project = os.path.realpath(request["cwd"]) + os.sep
    names = []
    for name, module in list(sys.modules.items()):
        path = getattr(module, "__file__", None) or ""
        if name not in preloaded and not os.path.realpath(path).startswith(project):
            names.append(name)
    with open(request["log"] + ".modules", "w") as out:
        json.dump(sorted(names), out)

preloaded = set()

def warm(names):
    for name in names:
        if name in sys.modules:
            continue
        try:
            importlib.import_module(name)
        except BaseException:
            pass
    preloaded.update(sys.modules)

def main():
    channel = os.fdopen(os.dup(1), "w", buffering=1)
    quiet = os.open(os.devnull, os.O_WRONLY)
    os.dup2(quiet, 1)
    hello = json.loads(sys.stdin.readline())
    warm(hello["preload"])
    channel.write("ready\n")
    for line in sys.stdin:
        request = json.loads(line)
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            child(request)
        _, status = os.waitpid(pid, 0)
        channel.write(json.dumps({"status": os.waitstatus_to_exitcode(status)}) + "\n")
        # What the child imported beyond the preload (pydantic.v1, fastapi.openapi.*, ...),
        # imported here before the next fork: each module is imported once per worker.
        try:
            with open(request["log"] + ".modules") as found:
                warm(json.load(found))
            os.unlink(request["log"] + ".modules")
        except (OSError, ValueError):
            pass

main()
"""


class _Zygote:
    """A Python process with the heavy imports done, that forks one child per variant."""

    def __init__(self, python: str, preload: Sequence[str], cwd: Path, env: Mapping[str, str]):
        self.process = subprocess.Popen(
            [python, "-c", _ZYGOTE],
            cwd=cwd,
            env=dict(env),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            bufsize=1,
        )
        self._write({"preload": list(preload)})
        self.ready = self._read() == "ready"

    def _write(self, message: Mapping[str, Any]) -> None:
        stdin: IO[str] | None = self.process.stdin
        if stdin is None:
            raise OSError("the OpenAPI worker process has no input")
        stdin.write(json.dumps(message) + "\n")
        stdin.flush()

    def _read(self) -> str:
        stdout: IO[str] | None = self.process.stdout
        if stdout is None:
            raise OSError("the OpenAPI worker process has no output")
        return stdout.readline().strip()

    def run(self, request: Mapping[str, Any]) -> int:
        """The child's exit status; raises OSError/ValueError when the zygote is gone."""
        self._write(request)
        answer = self._read()
        if not answer:
            raise OSError("the OpenAPI worker process exited")
        status = json.loads(answer)["status"]
        return int(status)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            if self.process.stdin is not None:
                self.process.stdin.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()


def preload_modules(index: FileIndex) -> list[str]:
    """Third-party modules the variants' application code imports (not tests or migrations)."""
    local = {PurePosixPath(key.path).parts[0].removesuffix(".py") for key in index.distinct()}
    names: set[str] = set()
    for key in index.distinct():
        parts = PurePosixPath(key.path).parts
        if not key.path.endswith(".py") or parts[0] in {"tests", "migrations"}:
            continue
        try:
            tree = ast.parse(index.sources[key].read_bytes())
        except (SyntaxError, ValueError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names.add(node.module)
    return sorted(name for name in names if name.split(".")[0] not in local)


class OpenAPIRunner:
    """Import `app.main` and build the OpenAPI document of many projects with one Python.

    With `os.fork` available, up to `workers` preforked processes serve the requests; else (or
    when a worker dies) each project runs in a fresh interpreter. Thread-safe.
    """

    def __init__(
        self,
        python: str,
        *,
        workers: int = 1,
        preload: Sequence[str] = (),
        scratch: Path,
        code: str = OPENAPI_CODE,
        timeout: float = OPENAPI_TIMEOUT,
    ) -> None:
        self.python = python
        self.code = code
        self.timeout = timeout
        self.scratch = scratch
        self.scratch.mkdir(parents=True, exist_ok=True)
        self._preload = list(preload)
        self._idle: list[_Zygote] = []
        self._started = 0
        self._workers = max(1, workers) if hasattr(os, "fork") else 0
        self._lock = threading.Lock()
        self._closed = False

    def __enter__(self) -> OpenAPIRunner:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _base_env(self) -> dict[str, str]:
        env = {**os.environ, **OPENAPI_ENV, "ENVIRONMENT": "test", "PYTHONDONTWRITEBYTECODE": "1"}
        env.pop("VIRTUAL_ENV", None)
        return env

    def _take(self) -> _Zygote | None:
        with self._lock:
            if self._idle:
                return self._idle.pop()
            if self._started >= self._workers:
                return None
            self._started += 1
        try:
            zygote = _Zygote(self.python, self._preload, self.scratch, self._base_env())
        except OSError:
            return None
        if not zygote.ready:
            zygote.close()
            return None
        return zygote

    def _give_back(self, zygote: _Zygote) -> None:
        with self._lock:
            if self._closed:
                zygote.close()
            else:
                self._idle.append(zygote)

    def run(self, project: Path, env: Mapping[str, str]) -> str:
        """The step's output; raises StepFailed with the traceback when it fails."""
        zygote = self._take()
        if zygote is not None:
            log = self.scratch / f"{unique_name('openapi')}.log"
            request = {
                "cwd": str(project),
                "env": dict(env),
                "code": self.code,
                "log": str(log),
                "timeout": self.timeout,
            }
            try:
                status = zygote.run(request)
            except (OSError, ValueError, json.JSONDecodeError):
                zygote.close()
            else:
                self._give_back(zygote)
                output = log.read_text(encoding="utf-8", errors="replace") if log.exists() else ""
                log.unlink(missing_ok=True)
                if status == 0:
                    return output
                if status == -14:
                    output += f"\ntimed out after {self.timeout:.0f}s"
                raise StepFailed(f"$ python -c <import app.main; build OpenAPI>\n{output}")
        return run_tool(
            [self.python, "-c", self.code],
            project,
            env={**self._base_env(), **env},
            timeout=self.timeout,
        )

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for zygote in idle:
            zygote.close()
