"""Where templates come from, and which of them are trusted.

backforge finds its own template in one of two places:

- **the git checkout it runs from** (an editable install or `python -m` in the repository): the
  checkout itself is the template source, recorded as its path;
- **the wheel**: the template (`copier.yml`, `template/`, `hooks/`) and the floor app
  (`benchmarks/`) ship as package data under `backforge/_bundled/`. Copier needs a git repository
  to record a template revision that `copier update` can return to, so the bundled template is
  copied into a *template cache*, a git repository at `$BACKFORGE_HOME/template` (default
  `~/.cache/backforge/template`), as one commit tagged with the installed backforge version and
  a digest of the template's content (`0.1.0+t<digest>`: two builds of one version with
  different templates never share a tag). A project records that repository as `_src_path` and
  the tag as `_commit`; installing another backforge adds a commit with its own tag on top, so
  `backforge update` merges from the template a project was rendered from to the installed one.

Both are trusted (their tasks run). Any other `--template` source is foreign: `new` and `update`
refuse it unless `--trust` is given, as Copier does.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Final

from backforge import __version__
from backforge.errors import UsageError
from backforge.versioning import git_commit, package_commit

PACKAGE_DIR: Final = Path(__file__).resolve().parent
CHECKOUT: Final = PACKAGE_DIR.parent
"""The repository root when backforge runs from a git checkout (unused for a wheel install)."""
BUNDLED: Final = PACKAGE_DIR / "_bundled"
"""The template and the floor app as package data of an installed wheel."""
TEMPLATE_PARTS: Final = ("copier.yml", "template", "hooks", "resource")
"""What the base template is made of: `resource/` too, as the base renders its items from the
resource template (resource/items.jinja)."""
_IGNORED: Final = shutil.ignore_patterns("__pycache__", "*.pyc", ".mypy_cache", ".ruff_cache")
CONTENT_DIGITS: Final = 12


def _is_template(folder: Path) -> bool:
    return (folder / "copier.yml").is_file()


def running_from_checkout() -> bool:
    return _is_template(CHECKOUT) and (CHECKOUT / "backforge").resolve() == PACKAGE_DIR


def backforge_home() -> Path:
    """backforge's cache folder: `$BACKFORGE_HOME`, else `$XDG_CACHE_HOME/backforge`."""
    explicit = os.environ.get("BACKFORGE_HOME")
    if explicit:
        return Path(explicit).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache).expanduser() / "backforge"


def template_cache() -> Path:
    """The git repository holding each installed version of the bundled template."""
    return backforge_home() / "template"


def benchmarks_dir() -> Path:
    """The load-test scripts and the floor app: the checkout's, else the wheel's."""
    if running_from_checkout():
        return CHECKOUT / "benchmarks"
    return BUNDLED / "benchmarks"


def hooks_dir() -> Path:
    """The template's hooks that backforge itself imports (`hooks/yes_no.py`): the checkout's,
    else the wheel's."""
    if running_from_checkout():
        return CHECKOUT / "hooks"
    return BUNDLED / "hooks"


def _git(cwd: Path, *args: str) -> str:
    identity = ["-c", "user.name=backforge", "-c", "user.email=backforge@localhost"]
    result = subprocess.run(
        ["git", *identity, *args], cwd=cwd, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise UsageError(
            f"cannot prepare the template cache {cwd}: git {' '.join(args)} failed: "
            f"{(result.stdout + result.stderr).strip()}"
        )
    return result.stdout


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def content_digest(root: Path, parts: Sequence[str]) -> str:
    """A digest of the files under `root/<part>` (paths, executable bits and bytes; caches
    left out): two folders with the same digest render the same."""
    digest = hashlib.sha256()
    files: list[Path] = []
    for part in parts:
        path = root / part
        files.extend([path] if path.is_file() else (p for p in path.rglob("*") if p.is_file()))
    for path in sorted(files):
        relative = path.relative_to(root)
        if _IGNORED("", list(relative.parts)):  # what copying into the cache leaves out
            continue
        executable = "x" if os.access(path, os.X_OK) else "-"
        digest.update(f"{relative.as_posix()}\0{executable}\0{path.stat().st_size}\0".encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:CONTENT_DIGITS]


def content_tag(version: str, digest: str) -> str:
    """The cache tag of a template: its version plus its content, `<version>+t<digest>` (a PEP
    440 local part; `.t<digest>` is appended to a local part the version already has)."""
    return f"{version}{'.' if '+' in version else '+'}t{digest}"


def cache_bundled_template(
    bundled: Path = BUNDLED,
    version: str = __version__,
    cache: Path | None = None,
    parts: Sequence[str] = TEMPLATE_PARTS,
) -> tuple[Path, str]:
    """The cache repository (default: the template cache) with `bundled/<part>` for each of
    `parts` committed under the tag `content_tag(version, <their digest>)`, added once: the
    repository and the tag to render or update from.

    The tag names the content as well as the version, so two builds with the same version and
    different templates get two tags: the second never renders what the first cached. Tags are
    never removed, so a project finds the tag it recorded as long as this cache added it."""
    missing = [part for part in parts if not (bundled / part).exists()]
    if missing:
        raise UsageError(
            f"this backforge has no bundled template ({bundled / missing[0]} is missing); "
            "reinstall it, or pass --template SRC (a path or git URL of the backforge template)"
        )
    repo = cache or template_cache()
    tag = content_tag(version, content_digest(bundled, parts))
    with _locked(repo.parent / f"{repo.name}.lock"):
        if not (repo / ".git").is_dir():
            repo.mkdir(parents=True, exist_ok=True)
            _git(repo, "init", "--quiet", "--initial-branch=main")
        if _git(repo, "tag", "--list", tag).strip():
            return repo, tag
        for child in repo.iterdir():
            if child.name == ".git":
                continue
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()
        for part in parts:
            source = bundled / part
            if source.is_dir():
                shutil.copytree(source, repo / part, ignore=_IGNORED)
            else:
                shutil.copy2(source, repo / part)
        _git(repo, "add", "--all")
        _git(repo, "commit", "--quiet", "--allow-empty", "-m", f"backforge template {tag}")
        _git(repo, "tag", tag)
    return repo, tag


def describe_template() -> str:
    """Which template this backforge renders: its version and commit (for `--version`)."""
    if running_from_checkout():
        commit = git_commit(CHECKOUT)
        if commit is None:  # an archive of the repository, installed with `pip install -e`
            return f"template {__version__} (this copy, not a git repository: commit unknown)"
        dirty = _git(CHECKOUT, "status", "--porcelain", "--", *TEMPLATE_PARTS).strip()
        changes = ", with uncommitted changes" if dirty else ""
        return f"template {__version__} (this checkout, commit {commit}{changes})"
    if not _is_template(BUNDLED):
        return "template: none bundled (pass --template SRC)"
    tag = content_tag(__version__, content_digest(BUNDLED, TEMPLATE_PARTS))
    commit = package_commit() or "unknown"
    return f"template {tag} (commit {commit})"


def default_template() -> tuple[str, str]:
    """The template that ships with this backforge and the revision to use by default: the
    checkout it runs from at `HEAD` (its working tree: Copier renders a local `HEAD` with its
    uncommitted changes; without a revision Copier would pick the latest release tag), else the
    template cache at this version and content."""
    if running_from_checkout():
        return str(CHECKOUT), "HEAD"
    repo, tag = cache_bundled_template()
    return str(repo), tag


def _same_path(source: str, trusted: Path) -> bool:
    path = Path(source).expanduser()
    try:
        return path.exists() and path.resolve() == trusted.resolve()
    except OSError:
        return False


def is_checkout(source: str) -> bool:
    """True when `source` is the checkout this backforge runs from."""
    return running_from_checkout() and _same_path(source, CHECKOUT)


def is_trusted(source: str) -> bool:
    """True for backforge's own template: the checkout it runs from or the template cache."""
    return is_checkout(source) or _same_path(source, template_cache())


def require_trust(source: str, trust: bool) -> None:
    """Refuse (UsageError, exit 2) a foreign template source unless `--trust` was given."""
    if trust or is_trusted(source):
        return
    raise UsageError(
        f"{source} is not backforge's own template; its tasks and migrations run code on this "
        "machine, so pass --trust if you trust it"
    )
