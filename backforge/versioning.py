"""backforge's version, from the repository: releases recorded in `backforge/releases.toml`, plus
git history.

A release is one entry of `releases.toml` (version, the full commit, date); git tags are not
needed (they do not travel with every clone). The file at HEAD and on every branch tip counts
(the release commit is recorded by a later commit). The version of a commit is:

- the release's version when the commit is a recorded release;
- otherwise `<next>.devN+g<sha>`, where the newest recorded release that is an ancestor of the
  commit is the base, `<next>` is its version with the last number raised, N the number of
  commits since it and `<sha>` the commit's short id (`0.0.1.devN+g<sha>` before any release;
  in a shallow clone that lacks the release commits, `<next>.dev0+g<sha>` from the newest one;
  without git or a build, `<next>.dev0+unknown`).

hatchling reads it through its `code` version source (this file is stdlib only, loaded by path),
and the build hook `backforge/_build.py` writes it and the commit into `backforge/_version.py`
for the sdist and the wheel, so a build without git (from an sdist) still knows both. At run
time, a git checkout (an editable install) computes them afresh, so they follow every commit; an
installed wheel reads `_version.py`.
"""

from __future__ import annotations

import re
import subprocess
import tomllib
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parent.parent
"""The repository root when this file is in a checkout (or an unpacked sdist)."""
RELEASES_FILE = "backforge/releases.toml"
VERSION_FILE = Path(__file__).resolve().parent / "_version.py"
_RELEASE = re.compile(r"^\d+(\.\d+)*$")
_SHA = re.compile(r"^[0-9a-f]{40}$")


class VersionError(RuntimeError):
    """The version cannot be told: the releases file is invalid, or git failed."""


class Release(NamedTuple):
    version: str
    commit: str
    date: str


def parse_releases(text: str, where: str) -> list[Release]:
    """The releases a `releases.toml` text records, oldest first."""
    try:
        entries = tomllib.loads(text).get("release", [])
    except tomllib.TOMLDecodeError as exc:
        raise VersionError(f"{where} is not valid TOML: {exc}") from exc
    releases = []
    for index, entry in enumerate(entries, 1):
        version, commit, date = (str(entry.get(key, "")) for key in ("version", "commit", "date"))
        if not _RELEASE.match(version) or not _SHA.match(commit) or not date:
            raise VersionError(
                f"{where}: release #{index} needs `version` (numbers such as 0.1.0), `commit` "
                f"(the full 40-character sha) and `date`; got {entry}"
            )
        releases.append(Release(version, commit, date))
    return sorted(set(releases), key=_order)


def _order(release: Release) -> tuple[int, ...]:
    return tuple(int(number) for number in release.version.split("."))


def read_releases(root: Path = ROOT) -> list[Release]:
    """The releases recorded in `root/backforge/releases.toml`, oldest first (none without
    the file)."""
    path = root / RELEASES_FILE
    if not path.is_file():
        return []
    return parse_releases(path.read_text(encoding="utf-8"), str(path))


def _branch_releases(root: Path) -> str:
    """The releases files of every branch tip (local and remote), concatenated: a release
    commit is recorded by a later commit, so checked out, it learns its version from them."""
    tips = _git(root, "for-each-ref", "--format=%(objectname)", "refs/heads", "refs/remotes")
    if not tips:
        return ""
    wanted = "".join(f"{tip}:{RELEASES_FILE}\n" for tip in sorted(set(tips.split())))
    result = subprocess.run(
        ["git", "cat-file", "--batch"],
        cwd=root,
        input=wanted.encode(),
        capture_output=True,
        check=False,
    )
    texts, out = [], result.stdout
    while out:
        header, _, out = out.partition(b"\n")
        fields = header.split()
        if len(fields) == 3 and fields[1] == b"blob":
            size = int(fields[2])
            texts.append(out[:size].decode("utf-8"))
            out = out[size + 1 :]
    return "\n".join(texts)


def _git(root: Path, *args: str) -> str | None:
    try:
        result = subprocess.run(
            ["git", *args], cwd=root, capture_output=True, text=True, check=False
        )
    except OSError:
        return None
    return result.stdout.strip() if result.returncode == 0 else None


def is_git_root(root: Path) -> bool:
    """True when `root` is the top of a git work tree (not a folder inside another one)."""
    top = _git(root, "rev-parse", "--show-toplevel")
    return top is not None and Path(top).resolve() == root.resolve()


def next_version(version: str) -> str:
    """`version` with its last number raised: the release the development versions lead to."""
    numbers = version.split(".")
    return ".".join([*numbers[:-1], str(int(numbers[-1]) + 1)])


def git_version(root: Path = ROOT) -> str | None:
    """The version of `root`'s HEAD from its releases file and history; None without git."""
    if not is_git_root(root):
        return None
    head = _git(root, "rev-parse", "HEAD")
    if head is None:
        return None
    others = parse_releases(_branch_releases(root), f"{RELEASES_FILE} of a branch in {root}")
    releases = sorted({*read_releases(root), *others}, key=_order)
    base: Release | None = None
    for release in reversed(releases):
        if release.commit == head:
            return release.version
        if _git(root, "merge-base", "--is-ancestor", release.commit, head) is not None:
            base = release
            break
    if base is None and releases and _git(root, "rev-parse", "--is-shallow-repository") == "true":
        # A shallow clone lacks the release commits: the newest recorded release is the base,
        # and the distance is unknown (0); the sha still tells commits apart.
        return f"{next_version(releases[-1].version)}.dev0+g{head[:7]}"
    since = _git(root, "rev-list", "--count", f"{base.commit}..{head}" if base else head)
    if since is None:
        raise VersionError(f"git rev-list failed in {root}")
    upcoming = next_version(base.version) if base else "0.0.1"
    return f"{upcoming}.dev{since}+g{head[:7]}"


def git_commit(root: Path = ROOT) -> str | None:
    """The full sha of `root`'s HEAD; None when `root` is not the top of a git work tree."""
    return _git(root, "rev-parse", "HEAD") if is_git_root(root) else None


def version_file_text(version: str, commit: str) -> str:
    """What a build writes into `backforge/_version.py`."""
    return (
        '"""Written by the build (backforge/_build.py): the version and commit it was built '
        'from."""\n\n'
        f'__version__ = "{version}"\n__commit__ = "{commit}"\n'
    )


def _built(name: str, file: Path) -> str | None:
    if not file.is_file():
        return None
    found = re.search(rf'^{name} = "([^"]*)"$', file.read_text(encoding="utf-8"), re.M)
    return found.group(1) if found else None


def built_version(file: Path = VERSION_FILE) -> str | None:
    """The version a build wrote into `backforge/_version.py`, if there is one."""
    return _built("__version__", file)


def built_commit(file: Path = VERSION_FILE) -> str | None:
    """The commit a build wrote into `backforge/_version.py`, if there is one."""
    return _built("__commit__", file)


def package_version(root: Path = ROOT, version_file: Path = VERSION_FILE) -> str:
    """This backforge's version: from git in a checkout, else the one its build recorded; for
    a copy with neither (an archive of the repository), `<next>.dev0+unknown` after the newest
    recorded release."""
    version = git_version(root) or built_version(version_file)
    if version is not None:
        return version
    releases = read_releases(root)
    return f"{next_version(releases[-1].version) if releases else '0.0.1'}.dev0+unknown"


def package_commit(root: Path = ROOT) -> str | None:
    """The commit this backforge comes from: HEAD in a checkout, else the one its build
    recorded (None when neither is known)."""
    return git_commit(root) or built_commit() or None
