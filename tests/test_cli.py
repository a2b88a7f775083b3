"""The CLI's contract: exit codes, messages, and that a failed `new` writes nothing."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from rich.console import Console
from typer.testing import CliRunner

from backforge import __version__
from backforge.answers import check_data, parse_data, parse_yes_no, yes_no_module
from backforge.cli import app
from backforge.errors import UsageError
from backforge.model import default_answers, load_questions, select, variant_ids
from backforge.report import print_report, to_record
from backforge.steps.results import StepResult, VariantResult
from backforge.steps.static import check_no_jinja
from backforge.update import refused_answer_changes

runner = CliRunner()
REPO = Path(__file__).resolve().parent.parent


def new(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["new", *args])
    return result.exit_code, result.output


def test_answers_are_yaml_but_text_answers_are_kept_as_typed() -> None:
    given = parse_data(
        ["docker=false", "features=[cache, jobs]", "project_name=Shop: API", "description=yes"]
    )
    assert check_data(REPO, given) == {
        "docker": False,
        "features": ["cache", "jobs"],
        "project_name": "Shop: API",  # YAML would read a mapping
        "description": "yes",  # YAML would read true
    }


@pytest.mark.parametrize("item", ["novalue", "=x"])
def test_parse_data_rejects_malformed_items(item: str) -> None:
    with pytest.raises(UsageError):
        parse_data([item])


def test_invalid_yaml_is_refused_naming_the_question() -> None:
    with pytest.raises(UsageError, match=r"-d features: the value is not valid YAML"):
        check_data(REPO, parse_data(["features=[unclosed"]))


def test_new_renders_text_answers_as_typed(tmp_path: Path) -> None:
    """Copier keeps a text answer as typed; backforge read it as YAML (`yes` became `True`,
    `Shop: API` a mapping, `#1 team` a comment, `1.10` the number 1.1)."""
    dest = tmp_path / "out"
    texts = {
        "project_name": "Shop: API",
        "description": "yes",
        "author_name": "#1 team",
        "author_email": "1.10@example.com",
    }
    code, output = new(
        str(dest),
        "--defaults",
        "--no-install",
        *(f"-d{key}={value}" for key, value in texts.items()),
    )
    assert code == 0, output
    answers = yaml.safe_load((dest / ".copier-answers.yml").read_text())
    assert {key: answers[key] for key in texts} == texts


def test_new_renders_a_project_without_installing(tmp_path: Path) -> None:
    dest = tmp_path / "shop"
    code, output = new(str(dest), "--defaults", "-d", "project_name=My Shop", "--no-install")
    assert code == 0, output
    assert "Next steps" in output
    for relative in ("app/main.py", "migrations/env.py", "Dockerfile", ".github/workflows/ci.yml"):
        assert (dest / relative).is_file(), relative
    answers = (dest / ".copier-answers.yml").read_text()
    assert "project_slug: my-shop" in answers
    assert "_src_path:" in answers
    env = (dest / ".env").read_text()
    secret = next(line for line in env.splitlines() if line.startswith("SECRET_KEY="))
    assert len(secret.removeprefix("SECRET_KEY=")) >= 43
    assert "change-me" not in secret
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=dest, capture_output=True, text=True, check=True
    ).stdout.split()
    assert "app/main.py" in tracked
    assert ".env" not in tracked
    assert not (dest / "uv.lock").exists()
    check_no_jinja(dest)


def test_two_renders_get_different_secrets(tmp_path: Path) -> None:
    for name in ("a", "b"):
        assert (
            new(str(tmp_path / name), "--defaults", "-d", "project_name=X", "--no-install")[0] == 0
        )
    assert (tmp_path / "a" / ".env").read_text() != (tmp_path / "b" / ".env").read_text()


@pytest.mark.parametrize(
    ("answers", "message"),
    [
        (["project_name=Shop", "project_slug=Bad Slug"], "project_slug must match"),
        (["project_name=Shop", "database=oracle"], "'oracle' is not in"),
        (["project_name=Shop", "author_email=nobody"], "author_email must be an e-mail"),
        (["project_name=" + "x" * 61], "project_name must be 1 to 60 characters"),
        (["project_name=Shop", "auth=none", "features=billing"], "billing needs auth=jwt"),
        (["project_name=Shop", "auth=none", "features=admin"], "features: admin needs auth=jwt"),
        ([], 'Question "project_name" is required'),
    ],
)
def test_invalid_answers_exit_2_name_the_question_and_write_nothing(
    tmp_path: Path, answers: list[str], message: str
) -> None:
    dest = tmp_path / "out"
    args = [str(dest), "--defaults", "--no-install"]
    for answer in answers:
        args += ["-d", answer]
    code, output = new(*args)
    assert code == 2
    assert message in " ".join(output.split())
    assert not dest.exists()


def test_invalid_answers_leave_an_existing_empty_dest_empty(tmp_path: Path) -> None:
    code, _ = new(str(tmp_path), "--defaults", "-d", "project_slug=BAD", "-d", "project_name=X")
    assert code == 2
    assert list(tmp_path.iterdir()) == []


def test_existing_non_empty_dest_is_refused_untouched(tmp_path: Path) -> None:
    keep = tmp_path / "keep.txt"
    keep.write_text("mine")
    code, output = new(str(tmp_path), "--defaults", "-d", "project_name=X", "--no-install")
    assert code == 2
    assert "exists and is not empty" in output
    assert [path.name for path in tmp_path.iterdir()] == ["keep.txt"]
    assert keep.read_text() == "mine"


def test_unknown_option_is_a_usage_error(tmp_path: Path) -> None:
    code, output = new(str(tmp_path / "x"), "--bogus")
    assert code == 2
    assert "No such option" in output
    assert not (tmp_path / "x").exists()


def test_malformed_data_is_a_usage_error(tmp_path: Path) -> None:
    code, output = new(str(tmp_path / "x"), "--defaults", "-d", "project_name")
    assert code == 2
    assert "KEY=VALUE" in output


def test_unknown_template_is_a_usage_error(tmp_path: Path) -> None:
    code, _ = new(
        str(tmp_path / "x"), "--template", str(tmp_path / "nope"), "--defaults", "--trust"
    )
    assert code == 2
    assert not (tmp_path / "x").exists()


def test_version() -> None:
    """Run from this checkout: the package version, then the template's version and commit."""
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.strip()
    package, template = result.output.splitlines()
    assert package == f"backforge {__version__}"
    assert template.startswith(f"template {__version__} (this checkout, commit {head}")


@pytest.fixture
def foreign(tmp_path: Path) -> Path:
    """A clone of this template somewhere else: a source backforge does not trust."""
    source = tmp_path / "foreign"
    subprocess.run(["git", "clone", "--quiet", str(REPO), str(source)], check=True)
    return source


def test_new_refuses_a_foreign_template_without_trust(tmp_path: Path, foreign: Path) -> None:
    dest = tmp_path / "out"
    args = [str(dest), "--template", str(foreign), "--defaults", "-d", "project_name=X"]
    code, output = new(*args, "--no-install")
    assert code == 2
    assert "--trust" in output
    assert "not backforge's own template" in " ".join(output.split())
    assert not dest.exists()
    code, output = new(*args, "--no-install", "--trust")
    assert code == 0, output
    assert (dest / "app" / "main.py").is_file()
    assert (dest / ".env").is_file()  # the template's task ran
    assert f"_src_path: {foreign}" in (dest / ".copier-answers.yml").read_text()


def test_new_trusts_the_checkout_it_runs_from(tmp_path: Path) -> None:
    dest = tmp_path / "out"
    code, output = new(
        str(dest), "--template", str(REPO), "--defaults", "-d", "project_name=X", "--no-install"
    )
    assert code == 0, output
    assert (dest / ".env").is_file()


def _clean(project: Path) -> bool:
    status = subprocess.run(
        ["git", "status", "--porcelain"], cwd=project, capture_output=True, text=True, check=True
    )
    return status.stdout == ""


def test_update_refuses_a_foreign_template_without_trust(tmp_path: Path, foreign: Path) -> None:
    dest = tmp_path / "out"
    code, output = new(
        str(dest), "--template", str(foreign), "--defaults", "-d", "project_name=X",
        "--no-install", "--trust",
    )  # fmt: skip
    assert code == 0, output
    head = (dest / ".copier-answers.yml").read_bytes()
    refused = runner.invoke(app, ["update", str(dest), "--no-install", "-d", "docker=false"])
    assert refused.exit_code == 2, refused.output
    assert "--trust" in refused.output
    assert _clean(dest)
    assert (dest / "Dockerfile").is_file()
    assert (dest / ".copier-answers.yml").read_bytes() == head
    trusted = runner.invoke(
        app, ["update", str(dest), "--no-install", "-d", "docker=false", "--trust"]
    )
    assert trusted.exit_code == 0, trusted.output
    assert not (dest / "Dockerfile").exists()


@pytest.mark.parametrize("command", ["variants", "check"])
def test_markup_in_a_set_is_printed_as_typed(command: str) -> None:
    result = runner.invoke(app, [command, "--set", "database=[/oops]"])
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "database=[/oops]" in result.output
    # A value copier.yml does not offer (yet): refused, and printed with its brackets.
    bracketed = runner.invoke(app, [command, "--set", "database=sqlite,features=[teleport]"])
    assert bracketed.exit_code == 2
    assert "features=[teleport]" in bracketed.output


def test_markup_in_an_answer_is_printed_as_typed(tmp_path: Path) -> None:
    code, output = new(
        str(tmp_path / "x"), "--defaults", "-d", "project_name=X", "-d", "database=[/bold]"
    )
    assert code == 2
    assert "[/bold]" in output or "['/bold']" in output


def test_leftover_jinja_is_detected(tmp_path: Path) -> None:
    (tmp_path / "ok.yml").write_text("run: ${{ github.ref }}\n")
    check_no_jinja(tmp_path)
    (tmp_path / "bad.py").write_text("name = '{{ project_name }}'\n")
    with pytest.raises(Exception, match=r"bad\.py:1"):
        check_no_jinja(tmp_path)


def test_variants_lists_the_sets_of_copier_yml() -> None:
    from backforge.model import select

    repo = Path(__file__).resolve().parent.parent
    result = runner.invoke(app, ["variants", "--set", "all", "--json"])
    assert result.exit_code == 0, result.output
    records = json.loads(result.output)
    assert [{k: v for k, v in r.items() if k != "id"} for r in records] == select(repo, "all")
    for covering in ("pairwise", "3wise"):
        table = runner.invoke(app, ["variants", "--set", covering])
        assert table.exit_code == 0, table.output
        assert f"{len(select(repo, covering))} variants ({covering})" in table.output
    bad = runner.invoke(app, ["variants", "--set", "database=oracle"])
    assert bad.exit_code == 2
    assert "database" in bad.output


def test_template_checkout_clones_a_git_url_and_removes_the_clone(tmp_path: Path) -> None:
    from backforge.template import template_checkout

    repo = Path(__file__).resolve().parent.parent
    source = tmp_path / "origin"
    subprocess.run(["git", "clone", "--quiet", str(repo), str(source)], check=True)
    with template_checkout(f"file://{source}") as clone:
        assert (clone / "copier.yml").read_bytes() == (source / "copier.yml").read_bytes()
        assert clone != source
    assert not clone.exists()
    assert not clone.parent.exists()
    with template_checkout(str(source)) as folder:  # a folder is used in place, and kept
        assert folder == source.resolve()
    assert source.is_dir()
    with (
        pytest.raises(UsageError, match="cannot read the template"),
        template_checkout(f"file://{tmp_path / 'missing'}"),
    ):
        pass  # pragma: no cover - never entered
    with pytest.raises(UsageError, match="not a Copier template"), template_checkout(str(tmp_path)):
        pass  # pragma: no cover - never entered


def test_template_checkout_reads_a_git_url_at_the_requested_ref(tmp_path: Path) -> None:
    from backforge.template import template_checkout

    repo = Path(__file__).resolve().parent.parent
    source = tmp_path / "origin"
    subprocess.run(["git", "clone", "--quiet", str(repo), str(source)], check=True)
    before = (source / "copier.yml").read_bytes()
    first = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=source, check=True, capture_output=True, text=True
    ).stdout.strip()
    (source / "copier.yml").write_bytes(before + b"\n# a later revision\n")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "commit", "--quiet", "-am", "later"], cwd=source, check=True)
    with template_checkout(f"file://{source}") as clone:
        assert (clone / "copier.yml").read_bytes().endswith(b"# a later revision\n")
    with template_checkout(f"file://{source}", first) as clone:
        assert (clone / "copier.yml").read_bytes() == before
    with (
        pytest.raises(UsageError, match="cannot read the template"),
        template_checkout(f"file://{source}", "no-such-ref"),
    ):
        pass  # pragma: no cover - never entered


def test_variants_from_a_git_url_leave_no_clone_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from backforge.model import select

    repo = Path(__file__).resolve().parent.parent
    source = tmp_path / "origin"
    subprocess.run(["git", "clone", "--quiet", str(repo), str(source)], check=True)
    made: list[Path] = []
    mkdtemp = tempfile.mkdtemp

    def recording_mkdtemp(*args: Any, **kwargs: Any) -> str:
        made.append(Path(mkdtemp(*args, **kwargs)))
        return str(made[-1])

    monkeypatch.setattr(tempfile, "mkdtemp", recording_mkdtemp)
    listed = runner.invoke(app, ["variants", "--template", f"file://{source}", "--set", "presets"])
    assert listed.exit_code == 0, listed.output
    assert f"{len(select(source, 'presets'))} variants (presets)" in listed.output
    clones = [path for path in made if path.name.startswith("backforge-template-")]
    assert len(clones) == 1  # one clone, read once
    assert not clones[0].exists()


def test_the_repository_workflow_matches_the_github_schema() -> None:
    from backforge.steps.tools import tool

    workflow = Path(__file__).resolve().parent.parent / ".github" / "workflows" / "check.yml"
    result = subprocess.run(
        [*tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows", str(workflow)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


# ---------------------------------------------------------------------------------------------
# Answers given with -d (issue 27)
# ---------------------------------------------------------------------------------------------

NOT_YES_NO = ["maybe", "flase", "nah", "t", "1", "'yes please'"]


@pytest.mark.parametrize("value", NOT_YES_NO)
@pytest.mark.parametrize("question", ["multi_tenant", "docker"])
def test_a_yes_no_answer_must_be_a_yaml_boolean(tmp_path: Path, question: str, value: str) -> None:
    dest = tmp_path / "out"
    code, output = new(str(dest), "--defaults", "-d", "project_name=X", "-d", f"{question}={value}")
    assert code == 2, output
    text = " ".join(output.split())
    assert f"{question}:" in text
    assert "accepted values: true/false, yes/no, on/off, y/n" in text
    assert not dest.exists()


@pytest.mark.parametrize(
    ("value", "expected"),
    [(True, True), ("yes", True), ("Y", True), ("on", True), ("false", False), ("OFF", False)],
)
def test_the_yaml_booleans_are_yes_no_answers(value: object, expected: bool) -> None:
    assert check_data(REPO, {"docker": value}) == {"docker": expected}


def run_refuse_hook(
    tmp_path: Path, before: dict[str, Any], data: dict[str, Any]
) -> tuple[int, str]:
    answers_file = tmp_path / ".copier-answers.yml"
    answers_file.write_text(yaml.safe_dump(before), encoding="utf-8")
    hook = REPO / "hooks" / "refuse_answer_changes.py"
    done = subprocess.run(
        [sys.executable, str(hook), str(answers_file), json.dumps(data)],
        capture_output=True,
        text=True,
        check=False,
    )
    return done.returncode, done.stderr


@pytest.mark.parametrize("value", ["t", "maybe", "1", "yes", "off", "N"])
def test_the_cli_the_hook_and_update_share_one_yes_no_parser(tmp_path: Path, value: str) -> None:
    assert Path(yes_no_module().__file__ or "") == REPO / "hooks" / "yes_no.py"
    before = {"database": "sqlite", "auth": "jwt", "multi_tenant": True}
    data = {"multi_tenant": value}
    hook_code, hook_err = run_refuse_hook(tmp_path, before, data)
    try:
        answer: bool | None = parse_yes_no(value, "multi_tenant")
    except UsageError as exc:
        answer = None
        assert "multi_tenant" in str(exc)
        with pytest.raises(UsageError, match=r"multi_tenant: .* is not a yes/no answer"):
            refused_answer_changes(before, data)
        assert hook_code == 1
        assert f"refused: multi_tenant: '{value}' is not a yes/no answer" in hook_err
        return
    switched_off = answer is False
    assert bool(refused_answer_changes(before, data)) == switched_off
    assert hook_code == (1 if switched_off else 0), hook_err


@pytest.mark.parametrize(
    ("features", "refused"),
    [("[jobs]", True), ("jobs,cache", True), ("[email, jobs]", False), ("email,jobs", False)],
)
def test_the_hook_reads_features_given_as_text(
    tmp_path: Path, features: str, refused: bool
) -> None:
    """Plain `copier update -d features=...` hands the hook text: taking email out is refused."""
    before = {"auth": "jwt", "features": ["email"]}
    code, err = run_refuse_hook(tmp_path, before, {"features": features})
    assert (code, "refused: features: cannot switch off email" in err) == (
        (1, True) if refused else (0, False)
    ), err


@pytest.mark.parametrize("feature", ["audit", "oidc", "totp"])
def test_features_with_tables_are_kept_on_like_email(tmp_path: Path, feature: str) -> None:
    """The audit log's tables, oidc's identities and passwordless users, 2FA secrets and recovery
    codes come with their revisions: an update never takes the feature out."""
    before = {"auth": "jwt", "features": [feature, "jobs"]}
    messages = refused_answer_changes(before, {"features": ["jobs"]})
    assert [m for m in messages if f"cannot switch off {feature}" in m], messages
    assert refused_answer_changes(before, {"features": [feature]}) == []
    code, err = run_refuse_hook(tmp_path, before, {"features": "jobs"})
    assert (code, f"refused: features: cannot switch off {feature}" in err) == (1, True), err


@pytest.mark.parametrize("feature", ["audit", "oidc", "totp"])
def test_a_feature_needing_jwt_without_it_exits_2_naming_the_rule(
    tmp_path: Path, feature: str
) -> None:
    dest = tmp_path / "out"
    code, output = new(
        str(dest),
        "--defaults",
        "-d",
        "project_name=X",
        "-d",
        "auth=none",
        "-d",
        f"features={feature}",
    )
    assert code == 2, output
    assert f"features: {feature} needs auth=jwt" in " ".join(output.split())
    assert not dest.exists()


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("cache", ["cache"]),
        ("cache,jobs", ["cache", "jobs"]),
        (" cache , jobs ", ["cache", "jobs"]),
        ("", []),
        (None, []),
        (["jobs", "cache"], ["jobs", "cache"]),
    ],
)
def test_features_take_one_value_a_comma_list_a_yaml_list_or_nothing(
    value: object, expected: list[str]
) -> None:
    assert check_data(REPO, {"features": value}) == {"features": expected}


@pytest.mark.parametrize("value", ["cache", "cache,jobs", ""])
def test_new_renders_features_without_brackets(tmp_path: Path, value: str) -> None:
    dest = tmp_path / "out"
    result = runner.invoke(
        app,
        [
            "new",
            str(dest),
            "--defaults",
            "--no-install",
            "-d",
            "project_name=X",
            "-d",
            f"features={value}",
        ],
    )
    assert result.exit_code == 0, result.output
    assert result.exception is None
    answers = yaml.safe_load((dest / ".copier-answers.yml").read_text())
    assert answers["features"] == [item for item in value.split(",") if item]


@pytest.mark.parametrize("value", ["teleport", "cache,teleport", "[cache, teleport]"])
def test_an_unknown_feature_exits_2_with_the_expected_form(tmp_path: Path, value: str) -> None:
    dest = tmp_path / "out"
    result = runner.invoke(
        app, ["new", str(dest), "--defaults", "-d", "project_name=X", "-d", f"features={value}"]
    )
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit)
    text = " ".join(result.output.split())
    assert "features: 'teleport' is not one of its values (cache, rate_limit" in text
    assert "-d features=cache,jobs" in text
    assert not dest.exists()


@pytest.mark.parametrize(
    ("item", "named"),
    [
        ("feature=[cache]", "did you mean 'features'?"),
        ("dockr=false", "did you mean 'docker'?"),
        ("colour=blue", "questions: project_name, project_slug"),
        ("redis=true", "redis: a computed value"),
    ],
)
def test_an_unknown_key_exits_2_naming_the_closest_question(
    tmp_path: Path, item: str, named: str
) -> None:
    dest = tmp_path / "out"
    code, output = new(str(dest), "--defaults", "-d", "project_name=X", "-d", item)
    assert code == 2, output
    assert named in " ".join(output.split())
    assert not dest.exists()


@pytest.mark.parametrize(
    "args",
    [
        ["-d", "auth=none", "-d", "multi_tenant=true"],
        ["--preset", "minimal", "-d", "multi_tenant=true"],  # the preset says auth=none
    ],
)
def test_an_answer_to_a_question_not_asked_exits_2_naming_its_rule(
    tmp_path: Path, args: list[str]
) -> None:
    """Copier drops an answer whose `when` is false without a word: `new` refuses it, as `check`
    and `variants` do, instead of rendering a project without what was asked for."""
    dest = tmp_path / "out"
    code, output = new(str(dest), "--defaults", "-d", "project_name=X", *args)
    assert code == 2, output
    text = " ".join(output.split())
    assert "multi_tenant: not asked with these answers (when: {{ auth == 'jwt' }})" in text
    assert not dest.exists()


def test_new_with_a_preset_renders_its_answers(tmp_path: Path) -> None:
    dest = tmp_path / "saas"
    code, output = new(
        str(dest), "--preset", "saas", "--defaults", "-d", "project_name=X", "-d", "ci=none"
    )
    assert code == 0, output
    answers = yaml.safe_load((dest / ".copier-answers.yml").read_text())
    saas = select(REPO, "preset:saas")[0]
    for key in ("database", "auth", "multi_tenant", "features"):
        assert answers[key] == saas[key], key
    assert answers["ci"] == "none"  # -d wins over the preset
    assert answers["project_slug"] == "x"  # not the preset's placeholder name
    unknown = new(str(tmp_path / "nope"), "--preset", "enterprise", "--defaults")
    assert unknown[0] == 2
    assert "presets: minimal, default, saas" in unknown[1]


def test_new_with_the_minimal_preset(tmp_path: Path) -> None:
    dest = tmp_path / "minimal"
    code, output = new(str(dest), "--preset", "minimal", "--defaults", "-d", "project_name=X")
    assert code == 0, output
    answers = yaml.safe_load((dest / ".copier-answers.yml").read_text())
    assert (answers["database"], answers["auth"], answers["docker"]) == ("sqlite", "none", False)


def test_questions_lists_every_question_and_its_values_from_copier_yml() -> None:
    result = runner.invoke(app, ["questions"])
    assert result.exit_code == 0, result.output
    text = result.output
    for question in load_questions(REPO):
        if question.computed:
            assert f" {question.name} " not in text
            continue
        assert f" {question.name} " in text, question.name
        for choice in question.choices:
            assert str(choice) in text, (question.name, choice)
    assert "backforge questions" in runner.invoke(app, ["new", "--help"]).output


def test_variant_ids_are_whole_when_the_output_is_piped() -> None:
    """On `3wise`, which holds the longest ids (every feature): `all`'s table of 24,960 rows
    took 30 s to print, the same code."""
    found = select(REPO, "3wise")
    ids = variant_ids(found, default_answers(REPO))
    assert max(len(vid) for vid in ids) > 100
    table = runner.invoke(app, ["variants", "--set", "3wise"])
    assert table.exit_code == 0
    assert "…" not in table.output
    shown = {line.split("│")[1].strip() for line in table.output.splitlines() if "│" in line}
    assert shown == set(ids)
    records = json.loads(runner.invoke(app, ["variants", "--set", "3wise", "--json"]).output)
    assert [record["id"] for record in records] == ids


def test_the_check_summary_keeps_long_variant_ids_whole() -> None:
    vid = "sqlite-none-cache+rate_limit+websockets+jobs+email+metrics+sentry-abcdef"
    result = VariantResult(vid, {}, "static", "backforge new /tmp/x")
    result.steps.append(StepResult("render", "passed", 1.0))
    out = io.StringIO()
    print_report([result], Console(file=out, width=80), seconds=1.0)
    assert vid in out.getvalue()
    assert to_record(result)["id"] == vid


def _copy_working_tree(into: Path) -> None:
    """This checkout's files as they are (tracked and new, not ignored) into `into`."""
    files = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO, capture_output=True, text=True, check=True,
    ).stdout.split("\0")  # fmt: skip
    for relative in filter(None, files):
        source, target = REPO / relative, into / relative
        if source.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(source.read_bytes())
        elif target.is_file():
            target.unlink()  # deleted in the working tree


def _backforge_from(checkout: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The backforge CLI as run from the checkout (or copy) `checkout`."""
    return subprocess.run(
        [sys.executable, "-c", "from backforge.cli import main; main()", *args],
        cwd=checkout.parent, capture_output=True, text=True, check=False,
        env={**os.environ, "PYTHONPATH": str(checkout), "COLUMNS": "200"},
    )  # fmt: skip


def _release_tagged_copy(into: Path) -> Path:
    """This checkout's working tree (committed) with its history, the last recorded release
    tagged: a user's clone of the repository once releases are tagged."""
    from backforge.versioning import read_releases

    subprocess.run(["git", "clone", "--quiet", str(REPO), str(into)], check=True)
    _copy_working_tree(into)
    identity = ["-c", "user.name=t", "-c", "user.email=t@localhost"]
    subprocess.run(["git", "add", "--all"], cwd=into, check=True)
    subprocess.run(
        ["git", *identity, "commit", "--quiet", "--allow-empty", "-m", "working tree"],
        cwd=into, check=True,
    )  # fmt: skip
    release = read_releases(REPO)[-1]
    subprocess.run(["git", "tag", release.version, release.commit], cwd=into, check=True)
    return into


def test_a_checkout_with_release_tags_renders_and_updates_to_itself(tmp_path: Path) -> None:
    """Run from a checkout, backforge renders that checkout (as `--version` says), not the
    latest release tag Copier would pick; `update` then finds the project up to date instead of
    refusing a downgrade from the checkout to the release."""
    checkout = _release_tagged_copy(tmp_path / "checkout")
    release = subprocess.run(
        ["git", "describe", "--tags", "--abbrev=0"],
        cwd=checkout, capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip

    def backforge(*args: str) -> subprocess.CompletedProcess[str]:
        return _backforge_from(checkout, *args)

    version = backforge("--version")
    assert f"(this checkout, commit {_head(checkout)}" in version.stdout, version
    dest = tmp_path / "project"
    made = backforge("new", str(dest), "--defaults", "-d", "project_name=X", "--no-install")
    assert made.returncode == 0, made.stdout + made.stderr
    recorded = yaml.safe_load((dest / ".copier-answers.yml").read_text())
    assert recorded["_src_path"] == str(checkout)
    assert recorded["_commit"] != release
    assert recorded["_commit"].startswith(f"{release}-"), recorded  # HEAD, after the release
    updated = backforge("update", str(dest), "--no-install")
    assert updated.returncode == 0, updated.stdout + updated.stderr
    assert "already at template" in updated.stdout
    assert _clean(dest)


def _head(repo: Path) -> str:
    return subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, check=True
    ).stdout.strip()


def test_version_in_a_copy_without_git(tmp_path: Path) -> None:
    """An archive of the repository (no .git) installed with `pip install -e`: `--version` says
    the commit is unknown instead of a traceback blaming the template cache."""
    copy = tmp_path / "backforge-archive"
    _copy_working_tree(copy)
    shown = _backforge_from(copy, "--version")
    assert shown.returncode == 0, shown.stdout + shown.stderr
    package, template = shown.stdout.splitlines()
    version = package.removeprefix("backforge ")
    assert version.endswith(".dev0+unknown"), package
    assert template == f"template {version} (this copy, not a git repository: commit unknown)"


def test_plain_messages_are_never_broken_at_the_console_width() -> None:
    """`say` (update's "Updated DEST: template A → B", next steps' paths) keeps each message on
    one line in a narrow console, so the line can be searched for and copied."""
    message = "Updated /a/long/path/to/a/project: template 0.1.1.dev105+gd9b90b3.t1f7c96a2e860"
    printed = subprocess.run(
        [sys.executable, "-c", f"from backforge.cli.common import say; say({message!r})"],
        env={**os.environ, "COLUMNS": "40"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert printed.stdout == message + "\n"
