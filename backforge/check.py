"""`backforge check`: render every variant of a set and prove it, tier by tier.

The **static** tier, for each variant: render (in-process, Copier), no leftover Jinja, `ruff check`,
`ruff format --check`, byte-compile, import `app.main` and build the OpenAPI document. The
**full** tier adds `uv sync`, `mypy --strict`, hadolint, the CI schema, the Alembic round trip and
the project's own pytest suite against real servers (`backforge.servers.ServerPool`).

What makes the static tier fast over hundreds of variants:

- **Files identical across variants are checked once.** `FileIndex` keys every rendered file by
  (ruff configuration, relative path, sha256 of its content). The distinct versions of the files
  ruff reads are laid out in *layers* (layer k holds the k-th distinct version of every path, and
  stand-ins that keep the package tree and the configuration; see `FileIndex.layout`). One
  `ruff check` and one `ruff format --check` run over all the layers of a configuration at once;
  each reported file maps back to every variant that has that content. Leftover Jinja and
  byte-compilation are checked per distinct content too. (Files that ruff reads only through an
  `include`/`extend-include` setting, beyond Python files and config files, are not laid out.)
- **One shared environment** with every variant's dependencies (the union of their
  `[project].dependencies`) is built once with uv and cached by a hash of that set. The OpenAPI
  step imports each variant in it, in a child forked from a process that has already imported
  the heavy third-party modules (FastAPI, SQLAlchemy, ...), so each variant costs only its own
  modules.

A variant's steps run in order; after its first failure the rest are recorded as skipped, so a
report always names the step that broke (as `backforge.validate.Pipeline` does). For steps run
once for many variants, each variant's `seconds` is its share of the batch's wall time.
"""

from __future__ import annotations

import ast
import contextlib
import fcntl
import hashlib
import io
import json
import multiprocessing
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
import traceback
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, Any, Final, Literal

from backforge.model import default_answers, reproduce_command, variant_id
from backforge.render import effective_ref, render
from backforge.servers import ServerPool, ServiceKind
from backforge.validate import (
    LEFTOVER_JINJA,
    OUTPUT_TAIL_LINES,
    TEXT_SUFFIXES,
    Pipeline,
    Report,
    StepFailed,
    StepResult,
    StepSummary,
    ci_schema,
    hadolint,
    migrations_round_trip,
    mypy_strict,
    project_files,
    project_pytest,
    run_tool,
    tool,
    unique_name,
    uv_env,
    uv_sync,
)

__all__ = [
    "FULL_STEPS",
    "OPENAPI_CODE",
    "RUFF_CONFIG_NAMES",
    "RUFF_SUFFIXES",
    "STATIC_STEPS",
    "CheckProgress",
    "FileIndex",
    "FileKey",
    "Layout",
    "OpenAPIRunner",
    "ProgressCallback",
    "Tier",
    "VariantResult",
    "byte_compile_files",
    "default_cache_dir",
    "exit_status",
    "no_jinja_files",
    "project_dependencies",
    "render_variant",
    "ruff_check_layers",
    "ruff_format_layers",
    "run_check",
    "shared_environment",
]

Tier = Literal["static", "full"]

STATIC_STEPS: Final = ("render", "no-jinja", "ruff-check", "ruff-format", "compile", "openapi")
FULL_STEPS: Final = (
    *STATIC_STEPS,
    "uv-sync",
    "mypy",
    "hadolint",
    "ci-schema",
    "migrations",
    "pytest",
)

RUFF_CONFIG_NAMES: Final = frozenset(
    {"pyproject.toml", "ruff.toml", ".ruff.toml", ".gitignore", ".ignore"}
)
"""Files that change what ruff checks or how: variants differing in them are linted apart."""

RUFF_SUFFIXES: Final = frozenset({".py", ".pyi", ".pyw", ".ipynb"})
"""Files that ruff lints and formats (its default `include`, besides pyproject.toml)."""

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

PARALLEL_RENDER_MIN: Final = 16
"""From this many variants on (and with jobs > 1), rendering runs in a pool of processes."""

UNREACHABLE_PORT: Final = 9
"""The discard port: a server URL that the OpenAPI step hands out, which nothing answers."""


# ---------------------------------------------------------------------------------------------
# Results and progress
# ---------------------------------------------------------------------------------------------


@dataclass
class VariantResult(StepSummary):
    """One variant's run: its answers, each step's result, and the command that reproduces it."""

    id: str
    answers: dict[str, Any]
    tier: Tier
    reproduce: str
    steps: list[StepResult] = field(default_factory=list)
    project: Path | None = None
    """Where it was rendered; None once the run's temporary work directory is gone."""


@dataclass(frozen=True)
class CheckProgress:
    """What `run_check` reports to `on_progress` (possibly from worker threads)."""

    completed: int
    """Step results recorded so far, skipped ones included."""
    total: int
    """Steps of the whole run: variants x steps of the tier."""
    passed: int
    """Variants finished with every step passed."""
    failed: int
    """Variants with a failed step (finished or not)."""
    message: str
    """What runs now, such as `ruff check: 3 layers` or `postgresql-jwt: pytest`."""


ProgressCallback = Callable[[CheckProgress], None]


def exit_status(results: Sequence[VariantResult]) -> int:
    """0 when every variant passed, else 1 (the CLI's exit code for a failed check)."""
    return 0 if all(result.ok for result in results) else 1


def default_cache_dir() -> Path:
    """Where shared environments are kept between runs: `$XDG_CACHE_HOME/backforge`."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "backforge"


def _tail(text: str, lines: int = OUTPUT_TAIL_LINES) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# ---------------------------------------------------------------------------------------------
# The file index: every rendered file, once per distinct content
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, order=True)
class FileKey:
    """One distinct file: its ruff configuration, its path in the project, its content."""

    config: str
    """Hash of the variant's ruff-relevant configuration (see RUFF_CONFIG_NAMES)."""
    path: str
    """Relative POSIX path inside the project."""
    digest: str
    """sha256 of the content."""


@dataclass
class Layout:
    """Distinct file versions laid out for ruff: one directory per (configuration, layer)."""

    root: Path
    dirs: dict[str, list[Path]]
    """Per configuration hash, its layer directories (each a complete project tree)."""
    owner: dict[Path, FileKey]
    """Each laid-out file that stands for a distinct version (stand-ins are absent)."""

    @property
    def layer_count(self) -> int:
        return sum(len(dirs) for dirs in self.dirs.values())


def _ruff_config_part(path: str, data: bytes) -> str:
    """The part of a config file that matters to ruff, as text to hash."""
    if PurePosixPath(path).name != "pyproject.toml":
        return _sha256(data)
    try:
        parsed = tomllib.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError):
        return _sha256(data)
    project = parsed.get("project")
    tool_table = parsed.get("tool")
    relevant = {
        "ruff": tool_table.get("ruff") if isinstance(tool_table, dict) else None,
        "requires-python": project.get("requires-python") if isinstance(project, dict) else None,
    }
    return json.dumps(relevant, sort_keys=True, default=str)


class FileIndex:
    """Every file of every rendered variant, keyed by (ruff configuration, path, content).

    `projects` maps a variant id to its rendered project directory.
    """

    def __init__(self, projects: Mapping[str, Path]) -> None:
        self.projects = dict(projects)
        self.files: dict[str, dict[str, FileKey]] = {}
        """Per variant id: relative path -> key."""
        self.sources: dict[FileKey, Path] = {}
        """Per distinct key, a file that holds its content."""
        self._holders: dict[FileKey, list[str]] = {}
        for vid, project in self.projects.items():
            digests: dict[str, str] = {}
            sources: dict[str, Path] = {}
            config_parts: list[tuple[str, str]] = []
            for file in project_files(project):
                relative = file.relative_to(project).as_posix()
                data = file.read_bytes()
                digests[relative] = _sha256(data)
                sources[relative] = file
                if PurePosixPath(relative).name in RUFF_CONFIG_NAMES:
                    config_parts.append((relative, _ruff_config_part(relative, data)))
            config = _sha256(json.dumps(sorted(config_parts)).encode())[:16]
            keys = {path: FileKey(config, path, digest) for path, digest in digests.items()}
            self.files[vid] = keys
            for path, key in keys.items():
                self.sources.setdefault(key, sources[path])
                self._holders.setdefault(key, []).append(vid)

    def variants_of(self, key: FileKey) -> list[str]:
        """The variants that contain this exact file (in index order)."""
        return list(self._holders.get(key, []))

    def distinct(self) -> list[FileKey]:
        """Every distinct file once, in first-seen order."""
        return list(self._holders)

    def configs(self) -> list[str]:
        """The distinct ruff configurations, in first-seen order."""
        return list(dict.fromkeys(key.config for key in self._holders))

    def layout(self, root: Path) -> Layout:
        """Write each configuration's distinct versions of the files ruff reads under `root`.

        Layer k of a configuration holds the k-th distinct version of each Python file and
        config file. Where a path has fewer versions, a stand-in keeps the tree that ruff sees
        (packages and top-level modules, for first-party imports; the configuration): an empty
        `__init__.py` or top-level module, or the first version of a config file. Stand-ins own
        nothing: their diagnostics are ignored. Config files with more versions than any Python
        file get layers of their own, without stand-ins.
        """
        root.mkdir(parents=True, exist_ok=True)
        root = root.resolve()
        dirs: dict[str, list[Path]] = {}
        owner: dict[Path, FileKey] = {}
        for number, config in enumerate(self.configs()):
            versions: dict[str, list[FileKey]] = {}
            for key in self._holders:
                if key.config == config and _ruff_reads(key.path):
                    versions.setdefault(key.path, []).append(key)
            configs = {path for path in versions if PurePosixPath(path).name in RUFF_CONFIG_NAMES}
            tree = max((len(v) for p, v in versions.items() if p not in configs), default=1)
            layers = max([tree, *(len(versions[path]) for path in configs)])
            dirs[config] = []
            for layer in range(layers):
                directory = root / f"config-{number:02d}-layer-{layer:03d}"
                directory.mkdir()
                dirs[config].append(directory)
                for path, keys in versions.items():
                    target = directory / path
                    if layer < len(keys):
                        source: Path | None = self.sources[keys[layer]]
                        owner[target] = keys[layer]
                    elif layer >= tree:
                        continue  # a config-only layer
                    elif path in configs:
                        source = self.sources[keys[0]]
                    elif _keeps_tree(path):
                        source = None
                    else:
                        continue
                    target.parent.mkdir(parents=True, exist_ok=True)
                    if source is None:
                        target.touch()
                    else:
                        _place(source, target)
        return Layout(root=root, dirs=dirs, owner=owner)


def _ruff_reads(path: str) -> bool:
    pure = PurePosixPath(path)
    return pure.suffix in RUFF_SUFFIXES or pure.name in RUFF_CONFIG_NAMES


def _keeps_tree(path: str) -> bool:
    """Whether a stand-in is needed: a package marker, or a top-level module."""
    pure = PurePosixPath(path)
    return pure.name in {"__init__.py", "__init__.pyi"} or (
        len(pure.parts) == 1 and pure.suffix in {".py", ".pyi"}
    )


def _place(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


def _per_variant(
    index: FileIndex,
    name: str,
    problems: Mapping[FileKey, list[str]],
    seconds: float,
    *,
    header: str = "",
    broken: Mapping[str, str] | None = None,
) -> dict[str, StepResult]:
    """Turn problems found per distinct file into one StepResult per variant.

    `broken` maps a configuration hash to output that fails all of its variants (the tool
    itself failed there). Each variant's seconds are its share of the batch.
    """
    share = seconds / max(1, len(index.files))
    results: dict[str, StepResult] = {}
    for vid, keys in index.files.items():
        config = next(iter(keys.values())).config if keys else ""
        if broken and config in broken:
            results[vid] = StepResult(name, "failed", share, broken[config])
            continue
        lines = [line for path in sorted(keys) for line in problems.get(keys[path], [])]
        if lines:
            results[vid] = StepResult(name, "failed", share, "\n".join([header, *lines]).strip())
        else:
            results[vid] = StepResult(name, "passed", share, "")
    return results


# ---------------------------------------------------------------------------------------------
# Static checks over distinct files
# ---------------------------------------------------------------------------------------------


def no_jinja_files(index: FileIndex) -> dict[str, StepResult]:
    """No Jinja left in any file name or text file (as `validate.check_no_jinja`), per variant."""
    started = time.perf_counter()
    problems: dict[FileKey, list[str]] = {}
    for key in index.distinct():
        path = PurePosixPath(key.path)
        if "{{" in key.path or "{%" in key.path or path.suffix == ".jinja":
            problems[key] = [f"{key.path}: Jinja left in the file name"]
            continue
        if path.suffix not in TEXT_SUFFIXES or path.name == "uv.lock":
            continue
        text = index.sources[key].read_text(encoding="utf-8", errors="replace")
        found = [
            f"{key.path}:{number}: {line.strip()}"
            for number, line in enumerate(text.splitlines(), start=1)
            if LEFTOVER_JINJA.search(line)
        ]
        if found:
            problems[key] = found
    return _per_variant(
        index, "no-jinja", problems, time.perf_counter() - started, header="leftover Jinja:"
    )


def byte_compile_files(index: FileIndex) -> dict[str, StepResult]:
    """Compile every distinct Python file once (in memory), per variant."""
    started = time.perf_counter()
    problems: dict[FileKey, list[str]] = {}
    for key in index.distinct():
        if not key.path.endswith(".py"):
            continue
        source = index.sources[key].read_bytes()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                compile(source, key.path, "exec", dont_inherit=True)
        except SyntaxError as error:
            problems[key] = [f"{key.path}:{error.lineno}: {error.msg}"]
        except ValueError as error:  # null bytes
            problems[key] = [f"{key.path}: {error}"]
    return _per_variant(index, "compile", problems, time.perf_counter() - started)


def _ruff(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ}
    env.pop("VIRTUAL_ENV", None)
    return subprocess.run(
        [*tool("ruff"), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=900,
    )


def _owner_of(layout: Layout, cwd: Path, name: str) -> FileKey | None:
    path = Path(name)
    if not path.is_absolute():
        path = cwd / path
    found = layout.owner.get(path)
    if found is None and path.exists():
        found = layout.owner.get(path.resolve())
    return found


def ruff_check_layers(index: FileIndex, layout: Layout) -> dict[str, StepResult]:
    """`ruff check` once per configuration over all its layers; diagnostics go to their owners."""
    started = time.perf_counter()
    problems: dict[FileKey, list[str]] = {}
    broken: dict[str, str] = {}
    for config, dirs in layout.dirs.items():
        names = [directory.name for directory in dirs]
        args = ["check", "--no-cache", "--output-format", "json", "--", *names]
        result = _ruff(args, layout.root)
        try:
            diagnostics = json.loads(result.stdout) if result.stdout.strip() else []
        except json.JSONDecodeError:
            diagnostics = None
        if result.returncode not in (0, 1) or not isinstance(diagnostics, list):
            broken[config] = _ruff_failure("ruff check", result)
            continue
        for item in diagnostics:
            key = _owner_of(layout, layout.root, str(item.get("filename", "")))
            if key is None:
                continue  # a stand-in file
            location = item.get("location") or {}
            code = item.get("code") or "error"
            problems.setdefault(key, []).append(
                f"{key.path}:{location.get('row', '?')}:{location.get('column', '?')}: "
                f"{code} {item.get('message', '')}"
            )
    return _per_variant(
        index,
        "ruff-check",
        problems,
        time.perf_counter() - started,
        header="$ ruff check .",
        broken=broken,
    )


def ruff_format_layers(index: FileIndex, layout: Layout) -> dict[str, StepResult]:
    """`ruff format --check --diff` once per configuration; each diff goes to its owner."""
    started = time.perf_counter()
    problems: dict[FileKey, list[str]] = {}
    broken: dict[str, str] = {}
    for config, dirs in layout.dirs.items():
        names = [directory.name for directory in dirs]
        result = _ruff(["format", "--check", "--diff", "--no-cache", "--", *names], layout.root)
        attributed = _attribute_format_output(layout, result.stdout, result.stderr, problems)
        if result.returncode not in (0, 1) and not attributed:
            broken[config] = _ruff_failure("ruff format", result)
    return _per_variant(
        index,
        "ruff-format",
        problems,
        time.perf_counter() - started,
        header="$ ruff format --check .",
        broken=broken,
    )


def _attribute_format_output(
    layout: Layout, stdout: str, stderr: str, problems: dict[FileKey, list[str]]
) -> bool:
    """Split ruff's diffs and errors by file; True when something was attributed."""
    attributed = False
    current: FileKey | None = None
    chunk: list[str] = []

    def flush() -> None:
        nonlocal attributed
        if current is not None and chunk:
            problems.setdefault(current, []).extend(chunk)
            attributed = True

    for line in stdout.splitlines():
        if line.startswith("--- "):
            flush()
            name = line[4:].split("\t")[0].strip()
            current = _owner_of(layout, layout.root, name)
            chunk = [f"--- {current.path}"] if current else []
            continue
        if current is None:
            continue
        if line.startswith("+++ "):
            chunk.append(f"+++ {current.path}")
        else:
            chunk.append(line)
    flush()
    for line in stderr.splitlines():
        for word in line.replace(":", " ").split():
            key = _owner_of(layout, layout.root, word)
            if key is not None:
                problems.setdefault(key, []).append(line.replace(word, key.path, 1))
                attributed = True
                break
    return attributed


def _ruff_failure(what: str, result: subprocess.CompletedProcess[str]) -> str:
    return f"{what} exited {result.returncode}:\n{_tail(result.stdout + result.stderr)}"


# ---------------------------------------------------------------------------------------------
# The shared environment and the OpenAPI step
# ---------------------------------------------------------------------------------------------


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
    by later runs; concurrent runs wait for each other (a file lock). Raises StepFailed with
    uv's output when the requirements cannot be installed.
    """
    from backforge.render import uv_binary

    wanted = sorted(set(requirements))
    version = ".".join(str(part) for part in sys.version_info[:3])
    key = _sha256(json.dumps({"python": [python, version], "requirements": wanted}).encode())
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
            install = [uv, "pip", "install", "--quiet", "--python", str(interpreter)]
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

def main():
    channel = os.fdopen(os.dup(1), "w", buffering=1)
    quiet = os.open(os.devnull, os.O_WRONLY)
    os.dup2(quiet, 1)
    hello = json.loads(sys.stdin.readline())
    for name in hello["preload"]:
        try:
            importlib.import_module(name)
        except BaseException:
            pass
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


def _preload_modules(index: FileIndex) -> list[str]:
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
        env = {**os.environ, "ENVIRONMENT": "test", "PYTHONDONTWRITEBYTECODE": "1"}
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


def _offline_database_url(answers: Mapping[str, Any], project: Path) -> str:
    """A DATABASE_URL of the variant's kind that needs no server (nothing may connect)."""
    database = str(answers.get("database", "sqlite"))
    if database == "sqlite":
        return f"sqlite:///{project / 'openapi-check.db'}"
    return f"{database}://backforge:backforge@127.0.0.1:{UNREACHABLE_PORT}/backforge"


# ---------------------------------------------------------------------------------------------
# Rendering
# ---------------------------------------------------------------------------------------------

_RENDER_LOCK = threading.Lock()


@contextlib.contextmanager
def _captured_output() -> Iterator[io.StringIO]:
    """Capture everything written to stdout/stderr, by Python and by child processes alike.

    Copier prints notices and the template's tasks print to the inherited descriptors; a check
    run shows a progress bar instead. The text is available in the yielded buffer afterwards.
    """
    buffer = io.StringIO()
    with _RENDER_LOCK, tempfile.TemporaryFile() as sink:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        saved = [os.dup(1), os.dup(2)]
        os.dup2(sink.fileno(), 1)
        os.dup2(sink.fileno(), 2)
        try:
            with contextlib.redirect_stdout(buffer), contextlib.redirect_stderr(buffer):
                yield buffer
        finally:
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)
            sink.seek(0)
            buffer.write(sink.read().decode("utf-8", errors="replace"))


def render_variant(
    template: str,
    dest: Path,
    answers: Mapping[str, Any],
    *,
    vcs_ref: str | None = None,
    tasks: bool = True,
) -> str:
    """Render one variant in-process, quietly; return what Copier and the tasks printed.

    With `tasks` the template's copy tasks run (as `backforge new` does); without them the
    render is faster and leaves no git repository or `.env` (enough for the static tier).
    Raises StepFailed with the error and the captured output.
    """
    with _captured_output() as output:
        try:
            render(
                template,
                dest,
                answers,
                vcs_ref=vcs_ref,
                defaults=True,
                quiet=True,
                skip_tasks=not tasks,
            )
        except Exception as error:
            failure: Exception | None = error
            trace = traceback.format_exc()
        else:
            failure = None
            trace = ""
    if failure is not None:
        shutil.rmtree(dest, ignore_errors=True)
        raise StepFailed(
            f"{type(failure).__name__}: {failure}\n{output.getvalue()}\n{_tail(trace, 15)}"
        )
    return output.getvalue()


@dataclass(frozen=True)
class _RenderJob:
    template: str
    dest: Path
    answers: Mapping[str, Any]
    vcs_ref: str | None
    tasks: bool


def _render_job(job: _RenderJob) -> StepResult:
    """The render step of one variant (a top-level function: it runs in worker processes)."""
    started = time.perf_counter()
    try:
        output = render_variant(
            job.template, job.dest, job.answers, vcs_ref=job.vcs_ref, tasks=job.tasks
        )
    except StepFailed as error:
        return StepResult("render", "failed", time.perf_counter() - started, error.output)
    return StepResult("render", "passed", time.perf_counter() - started, output)


# ---------------------------------------------------------------------------------------------
# The run
# ---------------------------------------------------------------------------------------------


@dataclass
class _Resources:
    """A variant's own database (and Redis database) on the pool's servers, made on first use."""

    project: Path
    answers: Mapping[str, Any]
    pool: ServerPool | None
    made: list[tuple[ServiceKind, str]] = field(default_factory=list)
    _database_url: str | None = None
    _redis_url: str | None = None

    def database_url(self) -> str:
        if self._database_url is None:
            database = str(self.answers.get("database", "sqlite"))
            if database == "sqlite":
                self._database_url = f"sqlite:///{self.project / 'variant.db'}"
            else:
                kind: ServiceKind = "postgresql" if database == "postgresql" else "mysql"
                self._database_url = self._create(kind)
        return self._database_url

    def extra_env(self) -> dict[str, str]:
        example = self.project / ".env.example"
        needs_redis = example.is_file() and "REDIS_URL" in example.read_text(encoding="utf-8")
        if needs_redis and self._redis_url is None:
            self._redis_url = self._create("redis")
        return {"REDIS_URL": self._redis_url} if self._redis_url else {}

    def _create(self, kind: ServiceKind) -> str:
        if self.pool is None:
            raise StepFailed(f"this variant needs a {kind} server, and no server pool was given")
        name = unique_name("bf")
        url = self.pool.get(kind).create_database(name)
        self.made.append((kind, name))
        return url

    def release(self) -> None:
        for kind, name in self.made:
            with contextlib.suppress(Exception):
                if self.pool is not None:
                    self.pool.get(kind).drop_database(name)
        self.made.clear()


class _Run:
    def __init__(
        self,
        template: str,
        variants: Sequence[Mapping[str, Any]],
        tier: Tier,
        jobs: int,
        root: Path,
        on_progress: ProgressCallback | None,
        vcs_ref: str | None,
        pool: ServerPool | None,
        cache_dir: Path,
        uv_cache: Path | None,
        keep_venvs: bool,
    ) -> None:
        self.template = template
        self.tier = tier
        self.jobs = max(1, jobs)
        self.root = root
        self.on_progress = on_progress
        self.vcs_ref = effective_ref(template, vcs_ref)
        self.pool = pool
        self.cache_dir = cache_dir
        self.uv_cache = uv_cache
        self.keep_venvs = keep_venvs
        self.steps = FULL_STEPS if tier == "full" else STATIC_STEPS
        self.total = len(variants) * len(self.steps)
        self.completed = 0
        self.failed_ids: set[str] = set()
        self.passed = 0
        self.message = "starting"
        self._lock = threading.Lock()
        defaults = _local_defaults(template)
        self.results: list[VariantResult] = []
        self.paths: dict[str, Path] = {}
        seen: dict[str, int] = {}
        for answers in variants:
            base = variant_id(answers, defaults)
            seen[base] = seen.get(base, 0) + 1
            vid = base if seen[base] == 1 else f"{base}-{seen[base]}"
            command = reproduce_command(answers, template, defaults)
            if self.vcs_ref is not None:
                command += f" --vcs-ref {shlex.quote(self.vcs_ref)}"
            self.paths[vid] = root / "variants" / vid
            self.results.append(
                VariantResult(
                    id=vid,
                    answers=dict(answers),
                    tier=tier,
                    reproduce=command,
                    project=root / "variants" / vid,
                )
            )

    # -- progress and recording -----------------------------------------------------------

    def _notify(self, message: str | None = None) -> None:
        if message is not None:
            self.message = message
        if self.on_progress is not None:
            self.on_progress(
                CheckProgress(
                    completed=self.completed,
                    total=self.total,
                    passed=self.passed,
                    failed=len(self.failed_ids),
                    message=self.message,
                )
            )

    def counted(self, variant: VariantResult, result: StepResult) -> None:
        """Account for a step result already appended to `variant.steps`."""
        with self._lock:
            self.completed += 1
            if result.status == "failed":
                self.failed_ids.add(variant.id)
            elif len(variant.steps) == len(self.steps) and variant.ok:
                self.passed += 1
            self._notify()

    def record(self, variant: VariantResult, result: StepResult) -> None:
        """Append a step's result, as skipped when an earlier step of the variant failed."""
        if not variant.ok:
            result = StepResult(result.name, "skipped")
        variant.steps.append(result)
        self.counted(variant, result)

    def phase(self, message: str) -> None:
        with self._lock:
            self._notify(message)

    # -- static tier ----------------------------------------------------------------------

    def render_all(self) -> None:
        jobs = [
            _RenderJob(
                self.template, self.paths[v.id], v.answers, self.vcs_ref, self.tier == "full"
            )
            for v in self.results
        ]
        self.phase(f"render 0/{len(jobs)}")
        if self.jobs > 1 and len(jobs) >= PARALLEL_RENDER_MIN:
            context = multiprocessing.get_context("spawn")
            workers = min(self.jobs, len(jobs))
            with ProcessPoolExecutor(workers, mp_context=context) as executor:
                for number, (variant, result) in enumerate(
                    zip(self.results, executor.map(_render_job, jobs), strict=True), start=1
                ):
                    self.message = f"render {number}/{len(jobs)}: {variant.id}"
                    self.record(variant, result)
            return
        for number, (variant, job) in enumerate(zip(self.results, jobs, strict=True), start=1):
            self.message = f"render {number}/{len(jobs)}: {variant.id}"
            self.record(variant, _render_job(job))

    def static(self) -> None:
        self.render_all()
        rendered = [v for v in self.results if v.ok]
        projects = {v.id: self.paths[v.id] for v in rendered}
        self.phase(f"indexing the files of {len(projects)} variants")
        if not projects:
            return
        index = FileIndex(projects)
        with ThreadPoolExecutor(1) as background:
            # uv builds the shared environment while the linters run
            venv: Future[dict[str, str | StepFailed]]
            venv = background.submit(self.environments, index)
            self.batch(rendered, "no-jinja", lambda: no_jinja_files(index))
            layout = index.layout(self.root / "lint")
            layers = f"{layout.layer_count} layers, {len(index.distinct())} distinct files"
            self.batch(rendered, "ruff check", lambda: ruff_check_layers(index, layout), layers)
            self.batch(rendered, "ruff format", lambda: ruff_format_layers(index, layout), layers)
            self.batch(rendered, "compile", lambda: byte_compile_files(index))
            self.phase("building the shared environment (uv)")
            pythons = venv.result()
        self.openapi(rendered, pythons, _preload_modules(index))

    def batch(
        self,
        variants: Sequence[VariantResult],
        label: str,
        action: Callable[[], dict[str, StepResult]],
        detail: str = "",
    ) -> None:
        self.phase(f"{label}: {detail}" if detail else label)
        outcomes = action()
        for variant in variants:
            self.record(variant, outcomes[variant.id])

    def environments(self, index: FileIndex) -> dict[str, str | StepFailed]:
        """Per variant id, the Python of a shared environment with its dependencies (or why not).

        One environment for the union of every variant's dependencies; when that union cannot
        be installed, one per distinct dependency set.
        """
        sets: dict[str, list[str]] = {}
        for vid, keys in index.files.items():
            key = keys.get("pyproject.toml")
            try:
                sets[vid] = project_dependencies(index.sources[key]) if key else []
            except (OSError, ValueError):
                sets[vid] = []  # an invalid pyproject.toml fails the variant's own steps
        union = sorted({item for items in sets.values() for item in items})
        try:
            python = shared_environment(union, self.cache_dir, uv_cache=self.uv_cache)
        except StepFailed as error:
            if len({tuple(sorted(items)) for items in sets.values()}) <= 1:
                return dict.fromkeys(sets, error)
        else:
            return dict.fromkeys(sets, python)
        found: dict[str, str | StepFailed] = {}
        built: dict[tuple[str, ...], str | StepFailed] = {}
        for vid, items in sets.items():
            wanted = tuple(sorted(items))
            if wanted not in built:
                try:
                    built[wanted] = shared_environment(
                        wanted, self.cache_dir, uv_cache=self.uv_cache
                    )
                except StepFailed as error:
                    built[wanted] = error
            found[vid] = built[wanted]
        return found

    def openapi(
        self,
        variants: Sequence[VariantResult],
        pythons: Mapping[str, str | StepFailed],
        preload: Sequence[str],
    ) -> None:
        runners: dict[str, OpenAPIRunner] = {}
        for python in {p for p in pythons.values() if isinstance(p, str)}:
            runners[python] = OpenAPIRunner(
                python, workers=self.jobs, preload=preload, scratch=self.root / "openapi"
            )
        done = [0]
        todo = [v for v in variants if v.ok]
        self.phase(f"openapi 0/{len(todo)}: importing {len(preload)} modules in the workers")
        for variant in variants:
            if not variant.ok:
                self.record(variant, StepResult("openapi", "skipped"))

        def one(variant: VariantResult) -> None:
            project = self.paths[variant.id]
            python = pythons.get(variant.id)
            started = time.perf_counter()
            try:
                if isinstance(python, StepFailed) or python is None:
                    raise python or StepFailed("no shared environment")
                env = {"DATABASE_URL": _offline_database_url(variant.answers, project)}
                output = runners[python].run(project, env)
            except StepFailed as error:
                result = StepResult(
                    "openapi", "failed", time.perf_counter() - started, error.output
                )
            else:
                result = StepResult("openapi", "passed", time.perf_counter() - started, output)
            with self._lock:
                done[0] += 1
                self.message = f"openapi {done[0]}/{len(todo)}: {variant.id}"
            self.record(variant, result)

        try:
            with ThreadPoolExecutor(self.jobs) as executor:
                list(executor.map(one, todo))
        finally:
            for runner in runners.values():
                runner.close()

    # -- full tier ------------------------------------------------------------------------

    def full(self) -> None:
        owned_pool = self.pool is None
        pool = self.pool or ServerPool()
        try:
            with ThreadPoolExecutor(self.jobs) as executor:
                list(executor.map(lambda v: self.full_variant(v, pool), self.results))
        finally:
            if owned_pool:
                pool.close()

    def full_variant(self, variant: VariantResult, pool: ServerPool) -> None:
        project = self.paths[variant.id]
        report = Report(steps=variant.steps)
        pipe = Pipeline(report)

        def on_step(result: StepResult) -> None:
            self.counted(variant, result)

        pipe.on_step = on_step
        resources = _Resources(project, variant.answers, pool)

        def step(name: str, action: Callable[[], str | None]) -> None:
            if variant.ok:
                with self._lock:
                    self.message = f"{variant.id}: {name}"
            pipe.step(name, action)

        try:
            step("uv-sync", lambda: uv_sync(project, self.uv_cache))
            step("mypy", lambda: mypy_strict(project))
            step("hadolint", lambda: hadolint(project))
            step("ci-schema", lambda: ci_schema(project))
            step(
                "migrations",
                lambda: migrations_round_trip(project, resources.database_url()),
            )
            step(
                "pytest",
                lambda: project_pytest(project, resources.database_url(), resources.extra_env()),
            )
        finally:
            resources.release()
            if variant.ok and not self.keep_venvs:
                shutil.rmtree(project / ".venv", ignore_errors=True)


def _local_defaults(template: str) -> dict[str, Any] | None:
    try:
        return default_answers(Path(template))
    except Exception:
        return None


def run_check(
    template: str,
    variants: Sequence[Mapping[str, Any]],
    tier: Tier = "static",
    jobs: int = os.cpu_count() or 1,
    work_dir: Path | None = None,
    on_progress: ProgressCallback | None = None,
    vcs_ref: str | None = None,
    *,
    pool: ServerPool | None = None,
    cache_dir: Path | None = None,
    uv_cache: Path | None = None,
    keep_venvs: bool = False,
) -> list[VariantResult]:
    """Render each variant of `variants` from `template` and prove it; one result per variant.

    - `tier`: "static" or "full" (see the module docstring for the steps).
    - `jobs`: worker threads for the per-variant steps (OpenAPI; every full-tier step).
    - `work_dir`: where projects are rendered (`variants/<id>`) and kept; its `variants`,
      `lint` and `openapi` folders are replaced. None: a temporary folder, removed at the end.
    - `on_progress`: called with a `CheckProgress` after each step (from worker threads too).
    - `vcs_ref`: the template's git ref; None renders a local git checkout's working tree
      (`HEAD` plus uncommitted changes) and otherwise Copier's default (the latest tag).
    - `pool`: the real servers of the full tier; None starts one for the run, stopped at the end.
    - `cache_dir`: where shared environments are cached (default `default_cache_dir()`);
      `uv_cache`: uv's cache for every install (default: uv's own).
    - `keep_venvs`: keep each passing full-tier project's `.venv` (failing ones keep theirs).

    Results come in the order of `variants`; `exit_status(results)` is the CLI's exit code.
    """
    if tier not in ("static", "full"):
        raise ValueError(f"unknown tier {tier!r}; expected static or full")
    temporary = work_dir is None
    root = Path(tempfile.mkdtemp(prefix="backforge-check-")) if work_dir is None else work_dir
    root = root.resolve()
    for part in ("variants", "lint", "openapi"):
        shutil.rmtree(root / part, ignore_errors=True)
    (root / "variants").mkdir(parents=True, exist_ok=True)
    run = _Run(
        template,
        variants,
        tier,
        jobs,
        root,
        on_progress,
        vcs_ref,
        pool,
        cache_dir or default_cache_dir(),
        uv_cache,
        keep_venvs,
    )
    try:
        run.static()
        if tier == "full":
            run.full()
        run.phase("done")
    finally:
        if temporary:
            shutil.rmtree(root, ignore_errors=True)
            for result in run.results:
                result.project = None
    return run.results
