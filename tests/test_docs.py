"""The docs tell one story: the quickstart, the CLI's next steps, Copier's message and the rendered
README serve the same way; the rendered README says how to run what a variant needs; the
repository's own architecture document is the one they point to (issue 27)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from backforge.cli.new import SERVE, next_steps
from backforge.model import select
from backforge.render import render

REPO = Path(__file__).resolve().parent.parent
README = (REPO / "README.md").read_text(encoding="utf-8")
ARCHITECTURE = REPO / "docs" / "architecture.md"


def bash_block_after(text: str, marker: str) -> list[str]:
    """The lines of the first ```bash block after `marker`."""
    rest = text[text.index(marker) :]
    match = re.search(r"```bash\n(.*?)```", rest, re.DOTALL)
    assert match, f"no bash block after {marker!r}"
    return [line for line in match.group(1).splitlines() if line.strip()]


def section(text: str, heading: str) -> str:
    """A markdown section, from its heading to the next heading of the same level."""
    start = text.index(heading)
    following = text.find("\n## ", start + len(heading))
    return text[start : following if following != -1 else len(text)]


def without_comment(line: str) -> str:
    return line.split("#", 1)[0].strip()


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Three variants, rendered without tasks: defaults; saas-like; e-mail alone."""
    answers: dict[str, dict[str, Any]] = {
        "default": {},
        "saas": {"features": ["cache", "jobs", "email"], "docker": True},
        "mail": {"auth": "none", "features": ["email"], "docker": False},
        "all": {"features": select(REPO, "preset:saas")[0]["features"]},
    }
    root = tmp_path_factory.mktemp("docs")
    for name, given in answers.items():
        render(str(REPO), root / name, {"project_name": "Docs", **given}, skip_tasks=True)
    return {name: root / name for name in answers}


def test_the_quickstart_is_two_commands_installing_backforge_and_uv_as_tools() -> None:
    lines = bash_block_after(README, "## Quickstart")
    assert len(lines) == 2, lines
    assert lines[0] == (
        "pip install uv && uv tool install --with-executables-from uv -e . && uv tool update-shell"
    )
    assert lines[1].startswith("backforge new ")


def test_one_way_to_serve_everywhere(rendered: dict[str, Path]) -> None:
    quickstart = bash_block_after(README, "## Quickstart")[1].split(" && ")
    after_cd = quickstart[
        quickstart.index(next(c for c in quickstart if c.startswith("cd "))) + 1 :
    ]
    assert after_cd == ["uv run alembic upgrade heads", SERVE]
    message = yaml.safe_load((REPO / "copier.yml").read_text())["_message_after_copy"]
    steps = [without_comment(line) for line in next_steps(Path("x"), installed=True)]
    run_it = [without_comment(line) for line in bash_block_after(readme(rendered), "## Run it")]
    copier_steps = [without_comment(line) for line in message.splitlines()]
    for commands in (steps, run_it, copier_steps):
        for command in after_cd:
            assert command in commands, (command, commands)
    everything = "\n".join(
        [README, message, *next_steps(Path("x"), installed=False), readme(rendered)]
    )
    assert "fastapi run" not in everything
    assert "0.0.0.0" not in README  # noqa: S104 - a text that must not appear


def readme(rendered: dict[str, Path], name: str = "default") -> str:
    return (rendered[name] / "README.md").read_text(encoding="utf-8")


def test_ci_runs_the_readme_test_command_exactly() -> None:
    (command,) = bash_block_after(README, "Run this repository's test suite:")
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert command in ci


def test_the_docs_point_to_the_repositorys_architecture_document() -> None:
    assert ARCHITECTURE.is_file()
    for relative in ("README.md", "copier.yml", "backforge/report.py"):
        text = (REPO / relative).read_text(encoding="utf-8")
        assert "docs/architecture.md" in text, relative
        assert "DESIGN.md" not in text, relative


def test_the_architecture_document_names_every_module_of_backforge() -> None:
    text = ARCHITECTURE.read_text(encoding="utf-8")
    package = REPO / "backforge"
    for path in sorted(package.rglob("*.py")):
        relative = path.relative_to(package)
        if relative.name == "__init__.py" and relative.parent != Path():
            continue  # a package is named by its folder
        name = relative.as_posix() if relative.parent == Path() else relative.name
        assert name in text, f"docs/architecture.md does not name backforge/{relative}"
    for folder in sorted(p for p in package.iterdir() if (p / "__init__.py").is_file()):
        assert f"{folder.name}/" in text, folder.name


def test_the_rendered_readme_says_how_to_run_redis_the_jobs_and_mail(
    rendered: dict[str, Path],
) -> None:
    run_it = section(readme(rendered, "saas"), "## Run it")
    commands = [without_comment(line) for line in bash_block_after(run_it, "need Redis")]
    commands += [without_comment(line) for line in bash_block_after(run_it, "Jobs run")]
    commands += [without_comment(line) for line in bash_block_after(run_it, "mail catcher")]
    assert 'redis-server --save "" --appendonly no' in commands
    assert "uv run taskiq worker app.jobs.worker:broker" in commands
    assert "uv run taskiq scheduler app.jobs.scheduler:scheduler" in commands
    assert "uv run python -m aiosmtpd -n -l 127.0.0.1:1025" in commands
    flat = " ".join(run_it.split())
    assert "the **worker's**" in flat
    assert "`docker compose up -d mailpit`" in flat
    compose = yaml.safe_load((rendered["saas"] / "compose.yaml").read_text())
    mailpit = compose["services"]["mailpit"]
    assert mailpit["profiles"] == ["dev"]
    assert mailpit["image"].startswith("axllent/mailpit:")

    alone = " ".join(section(readme(rendered, "mail"), "## Run it").split())
    assert "uv run python -m aiosmtpd -n -l 127.0.0.1:1025" in alone
    assert "the web app's" in alone
    for absent in ("mailpit", "taskiq", "redis-server"):
        assert absent not in alone, absent

    plain = section(readme(rendered), "## Run it")
    for absent in ("mailpit", "taskiq", "redis-server", "aiosmtpd"):
        assert absent not in plain, absent


def test_the_rendered_readme_documents_the_item_fields(rendered: dict[str, Path]) -> None:
    items = (REPO / "resource" / "items.jinja").read_text()  # items' resource answers
    field = r"'name': '{}', 'type': 'str', 'optional': {}, 'length': (\d+)"
    name_max = re.search(field.format("name", "false"), items)
    description_max = re.search(field.format("description", "true"), items)
    assert name_max and description_max
    text = " ".join(readme(rendered).split())
    assert f"a `name` (required, 1 to {name_max.group(1)} characters" in text
    assert f"a `description` (optional, at most {description_max.group(1)} characters" in text


def test_the_env_comment_names_only_the_features_that_bring_redis(
    rendered: dict[str, Path],
) -> None:
    env = (rendered["all"] / ".env.example").read_text()
    (comment,) = [line for line in env.splitlines() if line.startswith("# Redis")]
    assert comment.startswith("# Redis (for cache, rate_limit, websockets, jobs).")
    for feature in ("email", "metrics", "sentry"):
        assert feature not in comment


def test_the_readme_synopsis_lists_every_option_of_every_command() -> None:
    """README's "The CLI" block names each command with all of its options, as `--help` does."""
    import typer

    from backforge.cli import app

    synopsis = section(README, "## The CLI")
    commands: dict[str, Any] = getattr(typer.main.get_command(app), "commands", {})
    assert commands
    for name, command in commands.items():
        lines = [line for line in synopsis.splitlines() if line.startswith(f"backforge {name} ")]
        assert len(lines) == 1, f"README's synopsis has no line for `backforge {name}`"
        for param in command.params:
            options = [opt for opt in param.opts if opt.startswith("-") and opt != "--help"]
            if options:  # an option, not the argument; one of its spellings is shown
                shown = any(f"[{option}" in lines[0] for option in options)
                assert shown, f"`backforge {name}`: {'/'.join(options)} is not in README"
