"""Rendering many variants of one template for the static tier, cheaply, with Copier itself.

Per variant, Copier spent most of its time on work that does not depend on the answers:
- cloning the template (a local git checkout is cloned, its uncommitted changes committed) for
  every render: `template_snapshot` does Copier's own clone once per run and renders from that
  plain directory (so the static tier's `.copier-answers.yml` names no `_commit`);
- one `git config` subprocess per rendered file, to carry executable bits into the destination's
  git index when `core.fileMode` is false; the static tier's destinations are no repositories:
  `static_renders` skips it;
- compiling the same Jinja sources again for every variant (file contents, path names, question
  defaults): `static_renders` keeps each compiled template for the process, keyed by the
  environment's options and the source, and Jinja instantiates a fresh template from it;
- rebuilding the render context for every path part and file (about 900 times per variant): its
  costly parts, the answers merged from their sources and the answers to remember, cannot change
  once the render phase starts, so `static_renders` computes them once per render (a quarter of
  a render's CPU);
- three git processes per render to learn that the snapshot is no repository (`get_repo`), and
  parsing copier.yml again for every render: `static_renders` answers the first for plain
  directories and parses the second once per content.

`tests/test_check.py` proves the renders are byte-identical to plain Copier's (the answers
file's source lines aside).
"""

from __future__ import annotations

import contextlib
import contextvars
import copy
import shutil
import threading
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import copier._main as copier_main
import copier._template as copier_template
import copier._vcs as copier_vcs
from copier._jinja_ext import SandboxedEnvironment
from copier._user_data import AnswersMap

_CODE: dict[tuple[Any, ...], Any] = {}
_PATCH_LOCK = threading.Lock()


class _CompiledOnceEnvironment(SandboxedEnvironment):
    """Copier's sandboxed environment, compiling each distinct source once per process."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # What compiling depends on: the options and extensions (not the loader, which only
        # finds sources, and whose repr changes with every Copier worker).
        options = {name: repr(value) for name, value in kwargs.items() if name != "loader"}
        self._options = (repr(sorted(options.items())), tuple(sorted(self.extensions)))

    def compile(
        self,
        source: Any,
        name: str | None = None,
        filename: str | None = None,
        raw: bool = False,
        defer_init: bool = False,
    ) -> Any:
        parent: Any = super().compile
        if not isinstance(source, str):  # an already parsed template (jinja2.nodes.Template)
            return parent(source, name, filename, raw, defer_init)
        key = (self._options, source, name, filename, raw, defer_init)
        code = _CODE.get(key)
        if code is None:
            code = parent(source, name, filename, raw, defer_init)
            _CODE[key] = code
        return code


def _no_git() -> bool:
    return False


_RENDERING: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "backforge_rendering", default=None
)
"""While a worker renders its files: the worker and what was computed once for it."""
_render_template: Any = copier_main.Worker._render_template
_answers_to_remember: Any = copier_main.Worker._answers_to_remember
_combined: Any = AnswersMap.combined


def _render_template_once(self: Any) -> None:
    token = _RENDERING.set({"worker": self})
    try:
        _render_template(self)
    finally:
        _RENDERING.reset(token)


def _answers_to_remember_once(self: Any) -> Mapping[str, Any]:
    memo = _RENDERING.get()
    if memo is None or memo["worker"] is not self:
        return _answers_to_remember(self)  # type: ignore[no-any-return]
    if "remember" not in memo:
        memo["remember"] = _answers_to_remember(self)
    return dict(memo["remember"])


def _combined_once(self: AnswersMap) -> Mapping[str, Any]:
    memo = _RENDERING.get()
    if memo is None or memo["worker"].answers is not self:
        return _combined.fget(self)  # type: ignore[no-any-return]
    if "combined" not in memo:
        memo["combined"] = _combined.fget(self)
    return dict(memo["combined"])


_get_repo: Any = copier_template.__dict__["get_repo"]
_load_template_config: Any = copier_template.load_template_config
_CONFIGS: dict[tuple[str, int, int, bool], Any] = {}


def _get_repo_of_plain_directories(url: str) -> str | None:
    """`get_repo`, without its three git processes for a plain directory (the snapshot): a
    directory with neither `.git` nor `HEAD` is no repository root and no bundle (a file)."""
    path = Path(url).expanduser()
    if path.is_dir() and not (path / ".git").exists() and not (path / "HEAD").is_file():
        return None
    return _get_repo(url)  # type: ignore[no-any-return]


def _load_template_config_once(conf_path: Path, quiet: bool = False) -> Any:
    """copier.yml parsed once per content (a twentieth of a render); `!include`s are read
    every time (their files are not part of the key)."""
    path = Path(conf_path)
    data = path.read_bytes()
    if b"!include" in data:
        return _load_template_config(conf_path, quiet)
    stat = path.stat()
    key = (str(path.resolve()), stat.st_mtime_ns, stat.st_size, quiet)
    if key not in _CONFIGS:
        _CONFIGS[key] = _load_template_config(conf_path, quiet)
    return copy.deepcopy(_CONFIGS[key])


_PATCHES: dict[tuple[Any, str], Any] = {
    (copier_main, "SandboxedEnvironment"): _CompiledOnceEnvironment,
    (copier_main, "is_git_available"): _no_git,
    (copier_template, "get_repo"): _get_repo_of_plain_directories,
    (copier_template, "load_template_config"): _load_template_config_once,
    (copier_main.Worker, "_render_template"): _render_template_once,
    (copier_main.Worker, "_answers_to_remember"): _answers_to_remember_once,
    (AnswersMap, "combined"): property(_combined_once),
}
"""What `static_renders` replaces: (module or class, attribute) -> the replacement."""


@contextlib.contextmanager
def static_renders() -> Iterator[None]:
    """Copier, within this block, compiles each Jinja source once, runs no git (per file, or
    to learn that the snapshot is no repository), reads copier.yml once and computes the
    answers of a render once."""
    with _PATCH_LOCK:
        saved = {(owner, name): owner.__dict__[name] for owner, name in _PATCHES}
        for (owner, name), value in _PATCHES.items():
            setattr(owner, name, value)
        try:
            yield
        finally:
            for (owner, name), value in saved.items():
                setattr(owner, name, value)


def template_snapshot(template: str, vcs_ref: str | None, dest: Path) -> str | None:
    """The template at `vcs_ref` as a plain directory under `dest`, made by Copier's own clone
    (a local checkout's uncommitted changes included, as Copier renders them); None when the
    template is no git repository (render it as it is) or the clone fails."""
    if vcs_ref is None:
        return None
    target = dest / "template"
    shutil.rmtree(target, ignore_errors=True)
    dest.mkdir(parents=True, exist_ok=True)
    try:
        url = copier_vcs.get_repo(template)
        if url is None:
            return None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            copier_vcs.clone(url, vcs_ref, str(target))
    except Exception:
        shutil.rmtree(target, ignore_errors=True)
        return None
    shutil.rmtree(target / ".git", ignore_errors=True)
    return str(target)
