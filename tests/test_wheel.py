"""An installed wheel is complete: it renders from any directory, and updates what it rendered.

Two wheels are built from this checkout -- as it is, and as a later version whose template adds
a line to the project README -- and installed in turn into one fresh virtual environment.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from uv import find_uv_bin

from backforge import __version__

REPO = Path(__file__).resolve().parent.parent
LATER = "99.0.0"
LATER_LINE = "A line that only the later template renders."
SOURCES = (
    "pyproject.toml",
    "README.md",
    "backforge",
    "copier.yml",
    "template",
    "hooks",
    "resource",
)
SKIP = shutil.ignore_patterns("__pycache__", "*.pyc", ".mypy_cache", ".ruff_cache")


def _build(source: Path, out: Path) -> Path:
    subprocess.run(
        [find_uv_bin(), "build", "--wheel", "--quiet", "--out-dir", str(out), str(source)],
        check=True,
        capture_output=True,
    )
    (wheel,) = out.glob("backforge-*.whl")
    return wheel


def _later_source(into: Path) -> Path:
    """A copy of the checkout as version LATER, whose template README has one more line."""
    into.mkdir()
    for name in (*SOURCES, "benchmarks"):
        path = REPO / name
        if path.is_dir():
            shutil.copytree(path, into / name, ignore=SKIP)
        else:
            shutil.copy2(path, into / name)
    init = into / "backforge" / "__init__.py"
    init.write_text(init.read_text().replace(f'"{__version__}"', f'"{LATER}"'))
    readme = into / "template" / "README.md.jinja"
    readme.write_text(readme.read_text() + f"\n{LATER_LINE}\n")
    return into


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


def _git(project: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=project,
        capture_output=True,
        text=True,
        check=True,
    ).stdout


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


def test_an_installed_wheel_renders_and_updates_a_project(
    installed: Installed, tmp_path: Path
) -> None:
    version = installed.backforge("--version")
    assert version.returncode == 0, version.stderr
    assert version.stdout == f"backforge {__version__}\n"

    project = tmp_path / "api"
    made = installed.backforge("new", str(project), "--defaults", "-d", "project_name=X")
    assert made.returncode == 0, made.stdout + made.stderr
    assert (project / "uv.lock").is_file()  # `new` locked and installed it
    answers = _answers(project)
    assert answers["_commit"] == __version__
    cache = installed.home / "template"
    assert answers["_src_path"] == str(cache)
    assert LATER_LINE not in (project / "README.md").read_text()

    # The user's own edit, committed: an update must keep it.
    main = project / "app" / "main.py"
    main.write_text(main.read_text() + "\n# my own line\n")
    _git(project, "commit", "--quiet", "-am", "My edit")

    installed.install(_build(_later_source(tmp_path / "later"), tmp_path / "dist-later"))
    assert installed.backforge("--version").stdout == f"backforge {LATER}\n"
    updated = installed.backforge("update", str(project), "--no-install")
    assert updated.returncode == 0, updated.stdout + updated.stderr
    assert f"{__version__} → {LATER}" in updated.stdout
    assert _answers(project)["_commit"] == LATER
    assert LATER_LINE in (project / "README.md").read_text()
    assert main.read_text().endswith("\n# my own line\n")

    # A resource from the wheel's resource template (committed by `add resource`).
    _git(project, "add", "-A")
    _git(project, "commit", "--quiet", "-m", "Update")
    added = installed.backforge(
        "add", "resource", "customer", "-f", "name:str(80)", "--no-install", "-C", str(project)
    )
    assert added.returncode == 0, added.stdout + added.stderr
    resource = yaml.safe_load((project / ".copier-answers.resource-customer.yml").read_text())
    assert resource["_src_path"] == str(installed.home / "resource")
    assert str(resource["_commit"]).startswith(f"{LATER}+")
    tags = _git(cache, "tag", "--list").split()
    assert sorted(tags) == sorted([__version__, LATER])


def test_an_installed_wheel_refuses_a_foreign_template_without_trust(
    installed: Installed, tmp_path: Path
) -> None:
    refused = installed.backforge(
        "new", str(tmp_path / "x"), "--template", str(REPO), "--defaults", "--no-install"
    )
    assert refused.returncode == 2
    assert "--trust" in refused.stderr
    assert not (tmp_path / "x").exists()
