"""backforge's version from releases.toml and git history, without tags (backforge/versioning.py),
and the template cache keyed by version and content (backforge/source.py)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from test_update import git

import backforge
from backforge.errors import UsageError
from backforge.source import cache_bundled_template, content_tag
from backforge.versioning import (
    VersionError,
    built_commit,
    built_version,
    git_version,
    package_commit,
    package_version,
    read_releases,
    version_file_text,
)

REPO = Path(__file__).resolve().parent.parent


def commit(root: Path, message: str) -> str:
    (root / "log.txt").write_text((root / "log.txt").read_text() + message + "\n")
    git(root, "add", "-A")
    git(root, "commit", "--quiet", "-m", message)
    return git(root, "rev-parse", "HEAD").strip()


def record(root: Path, *releases: tuple[str, str]) -> str:
    """Write releases.toml with (version, commit) entries and commit it."""
    (root / "backforge").mkdir(exist_ok=True)
    (root / "backforge" / "releases.toml").write_text(
        "".join(
            f'[[release]]\nversion = "{v}"\ncommit = "{c}"\ndate = "2026-12-06"\n\n'
            for v, c in releases
        )
    )
    return commit(root, f"Record {[v for v, _ in releases]}")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "--quiet", "--initial-branch=main")
    (root / "log.txt").write_text("")
    commit(root, "first")
    return root


def test_commits_before_any_release_are_development_versions(repo: Path) -> None:
    second = commit(repo, "second")
    assert git_version(repo) == f"0.0.1.dev2+g{second[:7]}"


def test_a_release_commit_gets_its_version_and_every_later_commit_a_distinct_one(
    repo: Path,
) -> None:
    release = commit(repo, "the release")
    recorded = record(repo, ("0.1.0", release))
    assert git(repo, "tag", "--list") == ""  # no tags anywhere: the file and history suffice
    assert git_version(repo) == f"0.1.1.dev1+g{recorded[:7]}"
    later = commit(repo, "a fix")
    assert git_version(repo) == f"0.1.1.dev2+g{later[:7]}"

    # The release commit itself (its own tree does not list it yet; main's file does).
    git(repo, "checkout", "--quiet", "--detach", release)
    assert git_version(repo) == "0.1.0"
    # A later release is the base for the commits after it.
    git(repo, "checkout", "--quiet", "main")
    second = commit(repo, "the second release")
    record(repo, ("0.1.0", release), ("0.2.0", second))
    head = commit(repo, "after it")
    assert git_version(repo) == f"0.2.1.dev2+g{head[:7]}"


def test_a_release_on_another_line_is_not_a_base(repo: Path) -> None:
    """A release that is not an ancestor of HEAD (a branch released separately) is ignored."""
    base = git(repo, "rev-parse", "HEAD").strip()
    git(repo, "checkout", "--quiet", "-b", "side")
    side = commit(repo, "released on the side")
    git(repo, "checkout", "--quiet", "main")
    recorded = record(repo, ("0.0.5", base), ("0.9.0", side))
    assert git_version(repo) == f"0.0.6.dev1+g{recorded[:7]}"


def test_a_shallow_clone_without_the_release_commit_still_gets_a_distinct_version(
    repo: Path, tmp_path: Path
) -> None:
    release = commit(repo, "the release")
    record(repo, ("0.1.0", release))
    head = commit(repo, "a fix")
    shallow = tmp_path / "shallow"
    git(tmp_path, "clone", "--quiet", "--depth", "1", f"file://{repo}", str(shallow))
    assert git_version(shallow) == f"0.1.1.dev0+g{head[:7]}"
    assert git_version(repo) == f"0.1.1.dev2+g{head[:7]}"


def test_an_invalid_releases_file_is_refused_naming_the_field(repo: Path) -> None:
    (repo / "backforge").mkdir()
    (repo / "backforge" / "releases.toml").write_text(
        '[[release]]\nversion = "0.1.0"\ncommit = "a431707"\n'
    )
    with pytest.raises(VersionError, match=r"release #1 needs .*the full 40-character sha"):
        read_releases(repo)
    (repo / "backforge" / "releases.toml").write_text("[[release]\n")
    with pytest.raises(VersionError, match="not valid TOML"):
        read_releases(repo)


def test_without_git_the_build_recorded_version_counts(repo: Path, tmp_path: Path) -> None:
    inside = repo / "sub"
    inside.mkdir()
    assert git_version(inside) is None  # git answers for `repo`, not for this folder
    assert git_version(tmp_path / "nowhere") is None
    written = tmp_path / "_version.py"
    assert built_version(written) is None
    # An archive of the repository (no git, never built): after the newest release, unknown.
    archive = tmp_path / "archive"
    (archive / "backforge").mkdir(parents=True)
    assert package_version(archive, written) == "0.0.1.dev0+unknown"
    shutil.copy2(REPO / "backforge" / "releases.toml", archive / "backforge")
    assert package_version(archive, written) == "0.1.1.dev0+unknown"

    written.write_text(version_file_text("0.1.1.dev3+gabcdef0", "f" * 40))
    assert built_version(written) == "0.1.1.dev3+gabcdef0"
    assert built_commit(written) == "f" * 40
    assert package_version(archive, written) == "0.1.1.dev3+gabcdef0"


def test_this_checkout_knows_its_version_and_the_release_commit() -> None:
    """The editable install computes the version from git at import."""
    assert backforge.__version__ == git_version(REPO)
    (release,) = read_releases(REPO)[:1]
    assert release.version == "0.1.0"
    assert release.commit == git(REPO, "rev-parse", "a431707").strip()
    assert package_commit() == git(REPO, "rev-parse", "HEAD").strip()


# ---------------------------------------------------------------------------------------------
# The template cache
# ---------------------------------------------------------------------------------------------


def _bundle(root: Path, line: str) -> Path:
    (root / "template").mkdir(parents=True, exist_ok=True)
    (root / "hooks").mkdir(exist_ok=True)
    (root / "resource").mkdir(exist_ok=True)
    (root / "copier.yml").write_text("_subdirectory: template\n")
    (root / "resource" / "copier.yml").write_text("_subdirectory: template\n")
    (root / "template" / "README.md").write_text(f"{line}\n")
    (root / "hooks" / "post.py").write_text("print('hi')\n")
    pycache = root / "template" / "__pycache__"
    pycache.mkdir(exist_ok=True)
    (pycache / "x.pyc").write_bytes(b"ignored")
    return root


def test_the_cache_tags_each_content_of_one_version_apart(tmp_path: Path) -> None:
    cache = tmp_path / "cache" / "template"
    bundled = _bundle(tmp_path / "build", "first build")
    repo, first = cache_bundled_template(bundled, "0.1.0", cache)
    assert repo == cache
    assert first.startswith("0.1.0+t")
    assert git(cache, "show", f"{first}:template/README.md") == "first build\n"
    assert "__pycache__" not in git(cache, "ls-tree", "-r", "--name-only", first)

    # The same build again (and a cache file changed): the same tag, no new commit.
    (bundled / "template" / "__pycache__" / "x.pyc").write_bytes(b"other")
    assert cache_bundled_template(bundled, "0.1.0", cache) == (cache, first)
    assert git(cache, "rev-list", "--count", "HEAD") == "1\n"

    # Another build, same version, different template: its own tag, its own content.
    _bundle(bundled, "second build")
    _, second = cache_bundled_template(bundled, "0.1.0", cache)
    assert second != first and second.startswith("0.1.0+t")
    assert git(cache, "show", f"{second}:template/README.md") == "second build\n"
    assert git(cache, "show", f"{first}:template/README.md") == "first build\n"  # still there
    # An executable bit is content too.
    (bundled / "hooks" / "post.py").chmod(0o755)
    assert cache_bundled_template(bundled, "0.1.0", cache)[1] not in (first, second)


def test_the_cache_takes_any_parts_and_development_versions(tmp_path: Path) -> None:
    """Another folder (e.g. a resource template) cached in a repository of its own."""
    bundled = _bundle(tmp_path / "build", "x")
    cache = tmp_path / "resource-cache"
    _, tag = cache_bundled_template(bundled, "0.1.1.dev2+gabcdef0", cache, parts=("template",))
    assert tag.startswith("0.1.1.dev2+gabcdef0.t")
    assert git(cache, "ls-tree", "--name-only", tag) == "template\n"
    assert content_tag("1.0", "ab") == "1.0+tab"

    with pytest.raises(UsageError, match=r"no bundled template \(.*missing\.yml is missing\)"):
        cache_bundled_template(bundled, "0.1.0", cache, parts=("missing.yml",))
