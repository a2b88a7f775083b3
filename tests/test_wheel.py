"""An installed wheel is complete: it renders from any directory, and updates what it rendered.

Wheels are built and installed in turn into one fresh virtual environment: this checkout as it
is; the same commit (so the same version) with another template; a release recorded in
backforge/releases.toml (no tags), built from its sdist. Each renders its own template, and `update`
brings each one's change to a project that the previous one rendered.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from uv import find_uv_bin

from backforge import __version__

REPO = Path(__file__).resolve().parent.parent
RELEASE = "99.0.0"
NEW_LINE = "A line that only the changed template renders."
RELEASE_LINE = "A line that only the 99.0.0 template renders."


def _build(source: Path, out: Path, *, sdist: bool = False) -> Path:
    """A wheel of `source`; with `sdist`, built from the sdist (no git: the version the sdist
    recorded), as `uv build` and pip do."""
    only = [] if sdist else ["--wheel"]
    subprocess.run(
        [find_uv_bin(), "build", *only, "--quiet", "--out-dir", str(out), str(source)],
        check=True,
        capture_output=True,
    )
    (wheel,) = out.glob("backforge-*.whl")
    return wheel


def _git(project: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=project,
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def _clone(into: Path) -> Path:
    """A clone of this repository at its HEAD (no tags: releases.toml and history suffice)."""
    _git(REPO, "clone", "--quiet", "--no-checkout", "--no-tags", str(REPO), str(into))
    _git(into, "checkout", "--quiet", "--detach", _git(REPO, "rev-parse", "HEAD").strip())
    return into


def _add_readme_line(source: Path, line: str) -> None:
    readme = source / "template" / "README.md.jinja"
    readme.write_text(readme.read_text() + f"\n{line}\n")


def _changed_template(into: Path) -> Path:
    """This commit with one more line in the template README, uncommitted: the same version
    (git's HEAD is the same) and another template."""
    _add_readme_line(_clone(into), NEW_LINE)
    return into


def _release(into: Path) -> tuple[Path, str]:
    """A clone where the release RELEASE is a commit of its own (its template README has one
    more line) recorded by the next commit, checked out at the release commit: the source
    of a release build. The release commit's sha."""
    source = _clone(into)
    _git(source, "switch", "--quiet", "-c", "main-release")
    _add_readme_line(source, RELEASE_LINE)
    _git(source, "commit", "--quiet", "-am", f"Release {RELEASE}")
    sha = _git(source, "rev-parse", "HEAD").strip()
    with (source / "backforge/releases.toml").open("a") as releases:
        releases.write(f'\n[[release]]\nversion = "{RELEASE}"\ncommit = "{sha}"\n')
        releases.write('date = "2026-12-07"\n')
    _git(source, "add", "-A")
    _git(source, "commit", "--quiet", "-m", f"Record release {RELEASE}")
    _git(source, "checkout", "--quiet", "--detach", sha)
    return source, sha


class Installed:
    """A fresh virtual environment with a backforge wheel installed; commands run elsewhere."""

    def __init__(self, root: Path) -> None:
        self.venv = root / "venv"
        self.home = root / "home"
        self.cwd = root / "elsewhere"
        self.cwd.mkdir()
        subprocess.run(
            [find_uv_bin(), "venv", "--quiet", "--python", "3.11", str(self.venv)], check=True
        )

    def install(self, wheel: Path) -> None:
        python = str(self.venv / "bin" / "python")
        command = [find_uv_bin(), "pip", "install", "--quiet", "--python", python]
        subprocess.run([*command, "--reinstall-package", "backforge", str(wheel)], check=True)

    def backforge(self, *args: str) -> subprocess.CompletedProcess[str]:
        env = {
            key: value
            for key, value in os.environ.items()
            if key not in ("VIRTUAL_ENV", "PYTHONPATH")
        }
        env["BACKFORGE_HOME"] = str(self.home)
        return subprocess.run(
            [str(self.venv / "bin" / "backforge"), *args],
            cwd=self.cwd,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    root = tmp_path_factory.mktemp("wheel")
    env = Installed(root)
    env.install(_build(REPO, root / "dist"))
    yield env


def _answers(project: Path) -> dict[str, object]:
    data = yaml.safe_load((project / ".copier-answers.yml").read_text())
    assert isinstance(data, dict)
    return data


def test_the_wheel_ships_the_template_and_the_floor_app(installed: Installed) -> None:
    site = next((installed.venv / "lib").glob("python3.*/site-packages"))
    bundled = site / "backforge" / "_bundled"
    for name in (
        "copier.yml",
        "template",
        "hooks/post_copy.py",
        "benchmarks/floor.py",
        "resource/copier.yml",
        "resource/template",
    ):
        assert (bundled / name).exists(), name
    tracked = subprocess.run(
        ["git", "ls-files", "-z", "template"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split("\0")
    shipped = [
        str(p.relative_to(bundled)) for p in (bundled / "template").rglob("*") if p.is_file()
    ]
    assert sorted(shipped) == sorted(name for name in tracked if name)


def _tag_of(project: Path) -> str:
    return str(_answers(project)["_commit"])


def test_an_installed_wheel_renders_and_updates_a_project(
    installed: Installed, tmp_path: Path
) -> None:
    version = installed.backforge("--version")
    assert version.returncode == 0, version.stderr
    package, template = version.stdout.splitlines()
    assert package == f"backforge {__version__}"
    head = _git(REPO, "rev-parse", "HEAD").strip()
    first_tag = template.split()[1]
    assert first_tag.startswith(f"{__version__}.t"), template  # a development version: +g<sha>
    assert template == f"template {first_tag} (commit {head})"

    project = tmp_path / "api"
    made = installed.backforge("new", str(project), "--defaults", "-d", "project_name=X")
    assert made.returncode == 0, made.stdout + made.stderr
    assert (project / "uv.lock").is_file()  # `new` locked and installed it
    answers = _answers(project)
    assert answers["_commit"] == first_tag
    cache = installed.home / "template"
    assert answers["_src_path"] == str(cache)
    assert NEW_LINE not in (project / "README.md").read_text()

    # A resource from the wheel's resource template (committed by `add resource`).
    added = installed.backforge(
        "add", "resource", "customer", "-f", "name:str(80)", "--no-install", "-C", str(project)
    )
    assert added.returncode == 0, added.stdout + added.stderr
    resource = yaml.safe_load((project / ".copier-answers.resource-customer.yml").read_text())
    assert resource["_src_path"] == str(installed.home / "resource")
    resource_tag = str(resource["_commit"])
    assert resource_tag.startswith(f"{__version__}.t"), resource_tag

    # The user's own edits, committed: an update must keep them.
    main = project / "app" / "main.py"
    main.write_text(main.read_text() + "\n# my own line\n")
    customer = project / "app" / "models" / "customer.py"
    customer.write_text(customer.read_text() + "\n# my customer line\n")
    _git(project, "commit", "--quiet", "-am", "My edit")

    # Another build of the same version with another template: a tag of its own, so a new
    # project gets the new template and `update` brings the change (issue 33: the cache used
    # to return the first build's template for the version).
    installed.install(_build(_changed_template(tmp_path / "changed"), tmp_path / "dist-changed"))
    package, template = installed.backforge("--version").stdout.splitlines()
    assert package == f"backforge {__version__}"
    second_tag = template.split()[1]
    assert second_tag.startswith(f"{__version__}.t") and second_tag != first_tag
    fresh = tmp_path / "fresh"
    made = installed.backforge(
        "new", str(fresh), "--defaults", "-d", "project_name=X", "--no-install"
    )
    assert made.returncode == 0, made.stdout + made.stderr
    assert _tag_of(fresh) == second_tag
    assert NEW_LINE in (fresh / "README.md").read_text()

    updated = installed.backforge("update", str(project), "--no-install")
    assert updated.returncode == 0, updated.stdout + updated.stderr
    assert f"{first_tag} → {second_tag}" in updated.stdout
    assert _tag_of(project) == second_tag
    assert NEW_LINE in (project / "README.md").read_text()
    assert main.read_text().endswith("\n# my own line\n")
    _git(project, "commit", "--quiet", "-am", f"Update to {second_tag}")

    # A release, built from its sdist (no git there): its own version, its commit.
    source, sha = _release(tmp_path / "release")
    installed.install(_build(source, tmp_path / "dist-release", sdist=True))
    package, template = installed.backforge("--version").stdout.splitlines()
    assert package == f"backforge {RELEASE}"
    release_tag = template.split()[1]
    assert release_tag.startswith(f"{RELEASE}+t")
    assert template == f"template {release_tag} (commit {sha})"
    updated = installed.backforge("update", str(project), "--no-install")
    assert updated.returncode == 0, updated.stdout + updated.stderr
    assert f"{second_tag} → {release_tag}" in updated.stdout
    assert RELEASE_LINE in (project / "README.md").read_text()
    assert NEW_LINE not in (project / "README.md").read_text()  # the release never had it
    assert main.read_text().endswith("\n# my own line\n")

    # The resource follows the release too: Copier replays its old version (which needs the
    # project's answers recorded in the resource's own answers file) and renders the new one.
    resource = yaml.safe_load((project / ".copier-answers.resource-customer.yml").read_text())
    assert str(resource["_commit"]).startswith(f"{RELEASE}+t")
    assert f"resource customer {resource_tag} → {resource['_commit']}" in updated.stdout
    assert customer.read_text().endswith("\n# my customer line\n")
    tags = _git(cache, "tag", "--list").split()
    assert sorted(tags) == sorted([first_tag, second_tag, release_tag])


def test_an_installed_wheel_refuses_a_foreign_template_without_trust(
    installed: Installed, tmp_path: Path
) -> None:
    refused = installed.backforge(
        "new", str(tmp_path / "x"), "--template", str(REPO), "--defaults", "--no-install"
    )
    assert refused.returncode == 2
    assert "--trust" in refused.stderr
    assert not (tmp_path / "x").exists()
