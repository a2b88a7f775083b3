"""The static tier's steps over many variants at once: render, no leftover Jinja, ruff check,
ruff format, byte-compile. Files identical across variants are checked once (`FileIndex`)."""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import os
import py_compile
import re
import shutil
import subprocess
import tempfile
import time
import tomllib
import traceback
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Final

from backforge.capture import captured_output
from backforge.render import render
from backforge.steps.fast_render import static_renders
from backforge.steps.results import Step, StepFailed, StepResult, tail_of
from backforge.steps.tools import tool

TEXT_SUFFIXES = {
    ".py",
    ".toml",
    ".yml",
    ".yaml",
    ".md",
    ".ini",
    ".cfg",
    ".txt",
    ".mako",
    ".json",
    ".example",
    "",
}
# `${{ ... }}` is GitHub Actions syntax, not leftover Jinja.
LEFTOVER_JINJA = re.compile(r"(?<!\$)\{\{|\{%|%\}|\{#-?\s")
SKIP_DIRS = {".git", ".venv", ".mypy_cache", ".ruff_cache", ".pytest_cache", "__pycache__"}

RUFF_CONFIG_NAMES: Final = frozenset(
    {"pyproject.toml", "ruff.toml", ".ruff.toml", ".gitignore", ".ignore"}
)
"""Files that change what ruff checks or how: variants differing in them are linted apart."""

RUFF_SUFFIXES: Final = frozenset({".py", ".pyi", ".pyw", ".ipynb"})
"""Files that ruff lints and formats (its default `include`, besides pyproject.toml)."""

PARALLEL_RENDER_MIN: Final = 16
"""From this many variants on (and with jobs > 1), rendering runs in a pool of processes."""


def project_files(project: Path) -> Iterator[Path]:
    for path in sorted(project.rglob("*")):
        if any(part in SKIP_DIRS for part in path.relative_to(project).parts):
            continue
        if path.is_file():
            yield path


def jinja_leftovers(relative: str, source: Path) -> list[str]:
    """What Jinja a rendered file still holds: in its name, or (text files) in its lines."""
    path = PurePosixPath(relative)
    if "{{" in relative or "{%" in relative or path.suffix == ".jinja":
        return [f"{relative}: Jinja left in the file name"]
    if path.suffix not in TEXT_SUFFIXES or path.name == "uv.lock":
        return []
    text = source.read_text(encoding="utf-8", errors="replace")
    return [
        f"{relative}:{number}: {line.strip()}"
        for number, line in enumerate(text.splitlines(), start=1)
        if LEFTOVER_JINJA.search(line)
    ]


def check_no_jinja(project: Path) -> str:
    """No leftover Jinja in any file name or text file of one project."""
    problems: list[str] = []
    for path in project_files(project):
        problems += jinja_leftovers(path.relative_to(project).as_posix(), path)
    if problems:
        raise StepFailed("leftover Jinja:\n" + "\n".join(problems))
    return ""


def sha256_hex(data: bytes) -> str:
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
        return sha256_hex(data)
    try:
        parsed = tomllib.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError):
        return sha256_hex(data)
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
                digests[relative] = sha256_hex(data)
                sources[relative] = file
                if PurePosixPath(relative).name in RUFF_CONFIG_NAMES:
                    config_parts.append((relative, _ruff_config_part(relative, data)))
            config = sha256_hex(json.dumps(sorted(config_parts)).encode())[:16]
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
        (every module, for first-party imports; the configuration): an empty module, or the
        first version of a config file. Stand-ins own nothing: their diagnostics are ignored.
        Config files with more versions than any Python file get layers of their own, without
        stand-ins.
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
    """Whether a stand-in is needed: any module. ruff sorts `from app.main import x` as
    first-party only when `app/main.py` exists, so every layer keeps every module's path."""
    return PurePosixPath(path).suffix in {".py", ".pyi"}


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
    """No Jinja left in any file name or text file, per variant (each content checked once)."""
    started = time.perf_counter()
    problems: dict[FileKey, list[str]] = {}
    for key in index.distinct():
        found = jinja_leftovers(key.path, index.sources[key])
        if found:
            problems[key] = found
    return _per_variant(
        index, Step.NO_JINJA, problems, time.perf_counter() - started, header="leftover Jinja:"
    )


def byte_compile_files(index: FileIndex, pyc_dir: Path | None = None) -> dict[str, StepResult]:
    """Compile every distinct Python file once, per variant.

    With `pyc_dir`, each compiled file is kept there as a hash-checked .pyc and linked into the
    `__pycache__` of every variant that holds it, so that importing the variants (the OpenAPI
    step) compiles nothing again. Python checks the source's hash before it uses such a file.
    """
    started = time.perf_counter()
    problems: dict[FileKey, list[str]] = {}
    compiled: dict[FileKey, Path] = {}
    scratch = pyc_dir or Path(tempfile.mkdtemp(prefix="backforge-pyc-"))
    scratch.mkdir(parents=True, exist_ok=True)
    try:
        for key in index.distinct():
            if not key.path.endswith(".py"):
                continue
            target = scratch / f"{key.digest}.pyc"
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    py_compile.compile(
                        str(index.sources[key]),
                        cfile=str(target),
                        dfile=key.path,
                        doraise=True,
                        invalidation_mode=py_compile.PycInvalidationMode.CHECKED_HASH,
                    )
            except py_compile.PyCompileError as error:
                cause = error.exc_value
                if isinstance(cause, SyntaxError):
                    problems[key] = [f"{key.path}:{cause.lineno}: {cause.msg}"]
                else:  # null bytes
                    problems[key] = [f"{key.path}: {cause}"]
                continue
            if pyc_dir is not None:
                compiled[key] = target
    finally:
        if pyc_dir is None:
            shutil.rmtree(scratch, ignore_errors=True)
    for vid, keys in index.files.items():
        project = index.projects[vid]
        for path, key in keys.items():
            if key in compiled:
                cached = Path(importlib.util.cache_from_source(str(project / path)))
                cached.parent.mkdir(exist_ok=True)
                _place(compiled[key], cached)
    return _per_variant(index, Step.COMPILE, problems, time.perf_counter() - started)


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
        Step.RUFF_CHECK,
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
        Step.RUFF_FORMAT,
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
    return f"{what} exited {result.returncode}:\n{tail_of(result.stdout + result.stderr)}"


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
    with captured_output() as output:
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
            f"{type(failure).__name__}: {failure}\n{output.getvalue()}\n{tail_of(trace, 15)}"
        )
    return output.getvalue()


@dataclass(frozen=True)
class RenderJob:
    template: str
    dest: Path
    answers: Mapping[str, Any]
    vcs_ref: str | None
    tasks: bool


def render_job(job: RenderJob) -> StepResult:
    """The render step of one variant (a top-level function: it runs in worker processes)."""
    started = time.perf_counter()
    renders = contextlib.nullcontext() if job.tasks else static_renders()
    try:
        with renders:
            output = render_variant(
                job.template, job.dest, job.answers, vcs_ref=job.vcs_ref, tasks=job.tasks
            )
    except StepFailed as error:
        return StepResult(Step.RENDER, "failed", time.perf_counter() - started, error.output)
    return StepResult(Step.RENDER, "passed", time.perf_counter() - started, output)
