"""The generator's facts live in one place each (issue 27): computed answers come from copier.yml
through one typed `Variant`; one record per server kind; one `resolve_template()`; one step
registry; `render.py` split by job; `check` lets a bug through instead of swallowing it."""

from __future__ import annotations

import re
from pathlib import Path
from typing import get_args

import pytest
from typer.testing import CliRunner

from backforge import check as check_module
from backforge.bench.run import _floor_auth, run_bench
from backforge.bench.wrk import find_wrk
from backforge.check import CheckOptions, run_check
from backforge.cli import app
from backforge.databases import database_of
from backforge.errors import UsageError
from backforge.model import select, variant_of
from backforge.servers import INSTALL_HINTS, KINDS, SERVERS, ServerPool, ServiceKind, available
from backforge.steps.full import Resources
from backforge.steps.results import FULL_STEPS, STATIC_STEPS, Step, tier_steps

REPO = Path(__file__).resolve().parent.parent
PACKAGE = REPO / "backforge"


def copier_yml_with(tmp_path: Path, old: str, new: str) -> Path:
    """A template folder holding this copier.yml with `old` replaced by `new` (once)."""
    text = (REPO / "copier.yml").read_text(encoding="utf-8")
    assert text.count(old) == 1, old
    folder = tmp_path / "template"
    folder.mkdir()
    (folder / "copier.yml").write_text(text.replace(old, new), encoding="utf-8")
    return folder


def test_the_computed_answers_come_from_copier_yml(tmp_path: Path) -> None:
    variant = variant_of(REPO, {"features": ["cache", "email"]})
    assert variant.needs_redis
    assert variant.values["redis_features"] == ["cache"]
    assert variant.values["multi_tenant"] is False  # a default, from copier.yml
    assert not variant_of(REPO, {"features": ["email", "metrics", "sentry"]}).needs_redis
    # Say in copier.yml that e-mail needs Redis: the variant object follows.
    edited = copier_yml_with(
        tmp_path, "['cache', 'rate_limit',", "['email', 'cache', 'rate_limit',"
    )
    assert variant_of(edited, {"features": ["email"]}).needs_redis


def test_default_answers_are_copier_yml_s(tmp_path: Path) -> None:
    edited = copier_yml_with(tmp_path, "  default: sqlite\n", "  default: postgresql\n")
    assert database_of(variant_of(edited, {})).name == "postgresql"
    assert database_of(variant_of(REPO, {})).name == "sqlite"
    no_auth = tmp_path / "no-auth"
    no_auth.mkdir()
    text = (REPO / "copier.yml").read_text(encoding="utf-8")
    (no_auth / "copier.yml").write_text(text.replace("  default: jwt\n", "  default: none\n"))
    assert _floor_auth(variant_of(no_auth, {})) == "none"
    assert _floor_auth(variant_of(REPO, {"multi_tenant": True})) == "tenant"


@pytest.mark.skipif(not available("redis"), reason="apt-get install -y redis-server")
def test_a_variant_gets_redis_because_copier_yml_says_so(tmp_path: Path) -> None:
    project = tmp_path / "project"  # no .env.example to look into
    project.mkdir()
    with ServerPool() as pool:
        needs = Resources(project, variant_of(REPO, {"features": ["jobs"]}), pool)
        try:
            assert needs.extra_env()["REDIS_URL"].startswith("redis://127.0.0.1:")
        finally:
            needs.release()
        plain = Resources(project, variant_of(REPO, {"features": ["email"]}), pool)
        assert plain.extra_env() == {}


@pytest.mark.skipif(not available("mysql"), reason="apt-get install -y mariadb-server")
def test_a_sql_variant_reads_from_the_pools_one_replica_of_its_server(tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    with ServerPool() as pool:
        first = Resources(project, variant_of(REPO, {"database": "postgresql"}), pool)
        second = Resources(project, variant_of(REPO, {"database": "postgresql"}), pool)
        standby = pool.standby()
        assert first.extra_env() == second.extra_env() == {"DATABASE_READ_URL": standby.url()}
        assert set(pool.servers) == {"postgresql"}
        mysql = Resources(project, variant_of(REPO, {"database": "mysql"}), pool)
        replica = pool.standby("mysql")
        assert mysql.extra_env() == {"DATABASE_READ_URL": replica.url()}
        assert replica.primary is pool.get("mysql")
        sqlite = Resources(project, variant_of(REPO, {"database": "sqlite"}), pool)
        assert sqlite.extra_env() == {}
        assert set(pool.servers) == {"postgresql", "mysql"}


def test_one_record_per_server_kind() -> None:
    assert set(SERVERS) == set(get_args(ServiceKind)) == set(KINDS)
    for kind, record in SERVERS.items():
        assert record.service.kind == kind
        assert INSTALL_HINTS[kind] == record.install_hint
        assert record.install_hint.startswith("apt-get install -y ")
    servers = (PACKAGE / "servers" / "__init__.py").read_text()
    assert "SERVICES" not in servers and "_TOOL_LOOKUPS" not in servers


def test_every_command_takes_its_template_from_resolve_template() -> None:
    for path in [*(PACKAGE / "cli").glob("*.py"), PACKAGE / "bench" / "run.py"]:
        text = path.read_text(encoding="utf-8")
        assert "default_template(" not in text, path.name


def test_bench_honours_vcs_ref() -> None:
    try:
        find_wrk()
    except UsageError:
        pytest.skip("apt-get install -y wrk")
    with pytest.raises(UsageError, match="no-such-revision"):
        run_bench(vcs_ref="no-such-revision")
    result = CliRunner().invoke(app, ["bench", "--vcs-ref", "no-such-revision", "--duration", "1"])
    assert result.exit_code == 2, result.output
    assert "no-such-revision" in result.output
    assert "No such option" not in result.output


def test_step_names_are_said_once() -> None:
    assert all(isinstance(step, Step) for step in FULL_STEPS)
    assert FULL_STEPS[: len(STATIC_STEPS)] == STATIC_STEPS
    every = tier_steps("full", resources=True)
    assert [str(step) for step in Step] == [str(step) for step in every]
    assert [step for step in every if step != Step.ADD_RESOURCES] == list(FULL_STEPS)
    quoted = re.compile(r"""(StepResult\(|step\(|_per_variant\(\s*index,)\s*["']""")
    for path in (PACKAGE / "check.py", PACKAGE / "steps" / "static.py"):
        assert not quoted.search(path.read_text(encoding="utf-8")), path.name


def test_render_py_only_renders() -> None:
    import backforge.render as render_module

    assert render_module.__all__ == ["render"]
    for module in ("answers", "template", "commands", "capture"):
        assert (PACKAGE / f"{module}.py").is_file(), module


def test_check_lets_a_bug_through(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    def broken(template: Path) -> None:
        raise RuntimeError("a bug in backforge")

    monkeypatch.setattr(check_module, "default_answers", broken)
    (variant,) = select(REPO, "database=sqlite,auth=none,features=[]")
    with pytest.raises(RuntimeError, match="a bug in backforge"):
        run_check(str(REPO), [variant], CheckOptions(jobs=1, work_dir=tmp_path / "work"))
