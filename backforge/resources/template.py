"""Where the resource template comes from.

The resource template is the `resource/` folder of backforge's repository (`copier.yml` and
`template/`), shipped in the wheel as `backforge/_bundled/resource`. Copier records a template
revision (`_commit`), and can update from it, only when the source is the root of a git
repository, which `resource/` is not. So backforge commits it into a git repository of its own,
the *resource cache* `$BACKFORGE_HOME/resource` (default `~/.cache/backforge/resource`), once per
content, tagged like the template cache (`source.content_tag`: `<backforge version>+t<content
digest>`, a PEP 440 version whose public part is backforge's). Projects record that repository
as `_src_path` and the tag as `_commit`; a newer backforge, or a changed checkout, adds a commit
with its own tag on top, which `backforge update` then brings to every resource.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

from backforge import __version__
from backforge.errors import UsageError
from backforge.source import (
    BUNDLED,
    CHECKOUT,
    backforge_home,
    cache_bundled_template,
    running_from_checkout,
)

RESOURCE: Final = "resource"
_SKIPPED: Final = frozenset({"__pycache__", ".mypy_cache", ".ruff_cache", ".git"})


def resource_folder() -> Path:
    """The resource template that ships with this backforge: the checkout's, else the wheel's."""
    return CHECKOUT / RESOURCE if running_from_checkout() else BUNDLED / RESOURCE


def resource_cache() -> Path:
    """The git repository holding each version of the resource template that was used."""
    return backforge_home() / RESOURCE


def _kept(path: Path) -> bool:
    return not (_SKIPPED & set(path.parts)) and path.suffix != ".pyc"


def resource_template(folder: Path | None = None, version: str = __version__) -> tuple[str, str]:
    """The resource cache with `folder` (default: the shipped resource template) committed once
    under its tag: the repository and the tag to render or update from."""
    folder = folder or resource_folder()
    if not (folder / "copier.yml").is_file():
        raise UsageError(
            f"this backforge has no resource template ({folder / 'copier.yml'} is missing); "
            "reinstall backforge"
        )
    parts = sorted(p.name for p in folder.iterdir() if _kept(Path(p.name)))
    repo, tag = cache_bundled_template(folder, version, resource_cache(), parts=parts)
    return str(repo), tag


def is_resource_cache(source: object) -> bool:
    """True when an answers file's `_src_path` is backforge's resource cache."""
    if not isinstance(source, str) or not source:
        return False
    try:
        return Path(source).expanduser().resolve() == resource_cache().resolve()
    except OSError:
        return False


def update_ref(answers: dict[str, Any], trust: bool) -> str | None:
    """The revision a resource updates to: the shipped resource template's tag when it came from
    the resource cache, else its source's latest tag (refused without `trust`)."""
    source = answers.get("_src_path")
    if is_resource_cache(source):
        return resource_template()[1]
    if not trust:
        raise UsageError(
            f"the resource {answers.get('resource', '?')!r} comes from {source}, not backforge's "
            "resource template; its tasks and migrations run code on this machine, so pass "
            "--trust if you trust it"
        )
    return None
