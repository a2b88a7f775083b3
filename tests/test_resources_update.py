"""`backforge add resource`, `backforge resources` and `backforge update` with resources, on a
small resource template made here (the CLI's mechanics, whatever the real template renders):

- version 1 renders a model and the first revision (revising the answer `down_revisions`);
- version 2 changes the model's last line and adds a second revision for each resource.

The base template is test_update's tagged copy (0.1.0, 0.2.0). The resource template is
committed into the resource cache under `$BACKFORGE_HOME` (a temporary folder) like the one that
ships with backforge; plain Copier applies and updates it too.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from test_update import (
    NEW,
    OLD,
    TemplateRepo,
    build_template_repo,
    commit_all,
    git,
    render_at,
    snapshot,
)
from typer.testing import CliRunner

from backforge import __version__
from backforge.cli import app
from backforge.errors import UsageError
from backforge.resources import template as resource_source
from backforge.resources.project import alembic_heads
from backforge.update import update_project

runner = CliRunner()

COPIER_YML = """\
_subdirectory: template
_templates_suffix: .jinja
_answers_file: .copier-answers.resource.yml
_external_data:
  project: .copier-answers.yml
_envops:
  undefined: jinja2.StrictUndefined
  trim_blocks: true
  lstrip_blocks: true
  keep_trailing_newline: true

resource: {type: str}
plural: {type: str}
class_name: {type: str}
table: {type: str}
url: {type: str}
tag: {type: str}
fields: {type: yaml, default: []}
search: {type: yaml, default: []}
sort: {type: yaml, default: []}
scope: {type: str, default: global}
down_revisions: {type: yaml, default: []}
# The project's answers, recorded: Copier replays the old version in an empty folder, where
# _external_data is empty.
database: {type: str, default: "{{ _external_data.project.database | default('') }}"}
auth: {type: str, default: "{{ _external_data.project.auth | default('none') }}"}
multi_tenant: {type: bool, default: "{{ _external_data.project.multi_tenant | default(false) }}"}
features: {type: yaml, default: "{{ _external_data.project.features | default([]) | tojson }}"}
"""
ANSWERS = "# Changes here will be overwritten by Copier\n{{ _copier_answers|to_nice_yaml -}}\n"
MODEL = '''\
"""{{ class_name }}: table {{ table }} on {{ database }}."""

FIELDS = [
{% for field in fields %}
    "{{ field.name }}",
{% endfor %}
]
SCOPE = "{{ scope }}"
{% if multi_tenant %}
TENANT = True
{% endif %}
VERSION = 1
'''
FIRST_REVISION = """\
revision = "{{ resource }}_0001"
down_revision = ({% for parent in down_revisions %}"{{ parent }}", {% endfor %})
"""
SECOND_REVISION = """\
revision = "{{ resource }}_0002"
down_revision = "{{ resource }}_0001"
"""
USER_LINE = "# Our own note about this model.\n"


def write_resource_template(folder: Path, version: int) -> None:
    template = folder / "template"
    (template / "app/models").mkdir(parents=True, exist_ok=True)
    (template / "migrations/versions").mkdir(parents=True, exist_ok=True)
    (folder / "copier.yml").write_text(COPIER_YML)
    (template / "{{ _copier_conf.answers_file }}.jinja").write_text(ANSWERS)
    model = MODEL if version == 1 else MODEL.replace("VERSION = 1", "VERSION = 2")
    (template / "app/models/{{ resource }}.py.jinja").write_text(model)
    versions = template / "migrations/versions"
    (versions / "{{ resource }}_0001_{{ table }}.py.jinja").write_text(FIRST_REVISION)
    if version == 2:
        (versions / "{{ resource }}_0002_{{ table }}.py.jinja").write_text(SECOND_REVISION)


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> TemplateRepo:
    return build_template_repo(tmp_path_factory.mktemp("template") / "backforge")


@pytest.fixture
def resource_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The resource template backforge ships (here: version 1), and a fresh cache."""
    folder = tmp_path / "resource"
    write_resource_template(folder, 1)
    monkeypatch.setenv("BACKFORGE_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(resource_source, "resource_folder", lambda: folder)
    yield folder


@pytest.fixture
def project(repo: TemplateRepo, tmp_path: Path) -> Path:
    return render_at(repo, tmp_path / "shop", OLD, {})


def cli(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, " ".join(result.output.split())


def answers(project: Path, name: str) -> dict[str, Any]:
    loaded = yaml.safe_load((project / f".copier-answers.resource-{name}.yml").read_text())
    assert isinstance(loaded, dict)
    return loaded


def add_two(project: Path) -> None:
    code, output = cli(
        "add", "resource", "customer", "-f", "name:str(80)", "-f", "notes:text?",
        "--search", "name", "--no-install", "-C", str(project),
    )  # fmt: skip
    assert code == 0, output
    code, output = cli(
        "add", "resource", "invoice", "-f", "customer:ref(customer)",
        "-f", "status:enum(draft|sent)=draft", "--sort", "status", "--no-install",
        "-C", str(project),
    )  # fmt: skip
    assert code == 0, output


def test_add_renders_records_and_commits_each_resource(
    project: Path, resource_folder: Path
) -> None:
    heads = alembic_heads(project)
    add_two(project)
    assert git(project, "status", "--porcelain") == ""
    log = git(project, "log", "--format=%s")
    assert "Add resource customer (backforge add resource)" in log
    assert "Add resource invoice (backforge add resource)" in log
    customer = answers(project, "customer")
    cache, tag = resource_source.resource_template()
    assert customer["_src_path"] == cache
    assert customer["_commit"] == tag and tag.startswith(__version__) and tag != __version__
    assert customer["down_revisions"] == heads
    assert customer["scope"] == "owner"
    assert customer["search"] == ["name"]
    assert customer["fields"] == [
        {"name": "name", "type": "str", "optional": False, "length": 80},
        {"name": "notes", "type": "text", "optional": True},
    ]
    assert answers(project, "invoice")["down_revisions"] == ["customer_0001"]
    model = (project / "app/models/customer.py").read_text()
    assert model.startswith('"""Customer: table customers on sqlite."""')
    assert alembic_heads(project) == ["invoice_0001"]
    code, output = cli("resources", str(project))
    assert code == 0, output
    for expected in ("customer", "/api/v1/customers", "name:str(80), notes:text?", "invoice",
                     "customer:ref(customer), status:enum(draft|sent)=draft", tag):  # fmt: skip
        assert expected in output, expected
    code, output = cli("add", "resource", "customer", "-f", "x:int", "-C", str(project))
    assert code == 2
    assert "NAME 'customer' collides with a resource or model" in output


def test_add_takes_under_five_seconds_with_ten_fields(project: Path, resource_folder: Path) -> None:
    fields = [
        "title:str(120)", "notes:text?", "count:int=0", "amount:decimal(12,2)", "paid:bool=false",
        "due:date?", "at:datetime", "ext:uuid", "status:enum(draft|sent|paid)=draft",
        "buyer:ref(user)?",
    ]  # fmt: skip
    started = time.perf_counter()
    code, output = cli(
        "add", "resource", "invoice", *[f"--field={f}" for f in fields], "--no-install",
        "-C", str(project),
    )  # fmt: skip
    elapsed = time.perf_counter() - started
    assert code == 0, output
    assert elapsed < 5, f"backforge add resource took {elapsed:.2f} s"


def test_update_brings_the_base_and_a_new_resource_template_version(
    project: Path, resource_folder: Path
) -> None:
    add_two(project)
    first = {
        name: (project / f"migrations/versions/{name}_0001_{name}s.py").read_bytes()
        for name in ("customer", "invoice")
    }
    model = project / "app/models/customer.py"
    model.write_text(USER_LINE + model.read_text())
    commit_all(project, "Our note")
    head = git(project, "rev-parse", "HEAD")
    write_resource_template(resource_folder, 2)
    _, new_tag = resource_source.resource_template()

    code, output = cli(
        "update", str(project), "--vcs-ref", NEW, "--no-install", "--trust",
        "-d", "multi_tenant=true",
    )  # fmt: skip

    assert code == 0, output
    assert f"template {OLD} → {NEW}" in output
    assert f"resource customer {__version__}" in output and "resource invoice" in output
    assert (project / "docs/UPDATING.md").is_file()  # the base template's 0.2.0
    text = model.read_text()
    assert text.startswith(USER_LINE) and text.endswith("TENANT = True\nVERSION = 2\n")
    assert answers(project, "customer")["multi_tenant"] is True  # the project's, passed on
    for name, content in first.items():
        assert (project / f"migrations/versions/{name}_0001_{name}s.py").read_bytes() == content
        assert (project / f"migrations/versions/{name}_0002_{name}s.py").is_file()
        assert answers(project, name)["_commit"] == new_tag
    assert git(project, "rev-parse", "HEAD") == head, "update must commit nothing"
    assert git(project, "diff", "--cached", "--name-only") == "", "changes are left unstaged"
    status = git(project, "status", "--porcelain")
    assert " M app/models/customer.py" in status
    assert "?? migrations/versions/invoice_0002_invoices.py" in status
    assert alembic_heads(project) == ["customer_0002", "invoice_0002", "tenancy_0001"]


def test_a_resource_conflict_names_its_template_and_stops_there(
    project: Path, resource_folder: Path
) -> None:
    add_two(project)
    model = project / "app/models/customer.py"
    model.write_text(model.read_text().replace("VERSION = 1", "VERSION = 10"))
    commit_all(project, "Our version")
    head = git(project, "rev-parse", "HEAD")
    write_resource_template(resource_folder, 2)

    result = update_project(
        project,
        vcs_ref=NEW,
        install=False,
        resources={
            f".copier-answers.resource-{name}.yml": resource_source.update_ref(
                answers(project, name), trust=False
            )
            for name in ("customer", "invoice")
        },
    )

    assert result.exit_code == 1
    assert [(c.path, c.template) for c in result.conflicts] == [
        ("app/models/customer.py", "resource customer")
    ]
    assert [t.template for t in result.templates] == ["base", "resource customer"]
    assert result.pending == (".copier-answers.resource-invoice.yml",)
    assert any("run `backforge update` again" in step for step in result.next_steps())
    assert "<<<<<<<" in model.read_text()
    assert (project / "docs/UPDATING.md").is_file()
    assert git(project, "rev-parse", "HEAD") == head
    assert not (project / "migrations/versions/invoice_0002_invoices.py").exists()


def test_a_failing_resource_update_leaves_the_project_unchanged(
    project: Path, resource_folder: Path
) -> None:
    add_two(project)
    before = snapshot(project)
    write_resource_template(resource_folder, 2)
    with (resource_folder / "copier.yml").open("a") as config:
        config.write(
            "probe:\n  type: str\n  default: ''\n"
            "  validator: '{% if not probe %}probe must be given{% endif %}'\n"
        )
    code, output = cli("update", str(project), "--vcs-ref", NEW, "--no-install", "--trust")
    assert code == 2, output
    assert "resource customer" in output and "probe must be given" in output
    assert "the project was left unchanged" in output
    assert snapshot(project) == before


def test_plain_copier_applies_and_updates_a_resource(project: Path, resource_folder: Path) -> None:
    """The README's plain-Copier recipe, on the resource cache."""
    cache, tag = resource_source.resource_template()
    copier = [sys.executable, "-m", "copier"]
    heads = alembic_heads(project)
    data = [
        "-d", "resource=customer", "-d", "plural=customers", "-d", "class_name=Customer",
        "-d", "table=customers", "-d", "url=customers", "-d", "tag=customers",
        "-d", "fields=[{name: name, type: str, optional: false, length: 80}]",
        "-d", "scope=owner", "-d", f"down_revisions=[{', '.join(heads)}]",
    ]  # fmt: skip
    answers_file = ".copier-answers.resource-customer.yml"
    subprocess.run(
        [*copier, "copy", "--trust", "--defaults", "-r", tag, "-a", answers_file, *data,
         cache, str(project)],
        check=True, capture_output=True,
    )  # fmt: skip
    assert answers(project, "customer")["_commit"] == tag
    assert answers(project, "customer")["down_revisions"] == heads
    commit_all(project, "Add customer")
    write_resource_template(resource_folder, 2)
    _, new_tag = resource_source.resource_template()
    subprocess.run(
        [*copier, "update", "--trust", "--defaults", "-r", new_tag, "-a", answers_file],
        cwd=project, check=True, capture_output=True,
    )  # fmt: skip
    assert answers(project, "customer")["_commit"] == new_tag
    assert (project / "migrations/versions/customer_0002_customers.py").is_file()
    assert (project / "app/models/customer.py").read_text().endswith("VERSION = 2\n")
    code, output = cli("resources", str(project))
    assert code == 0 and new_tag in output, output


def test_the_cache_tags_each_content_once(tmp_path: Path, resource_folder: Path) -> None:
    first = resource_source.resource_template()
    assert resource_source.resource_template() == first
    (resource_folder / "template" / "__pycache__").mkdir()
    (resource_folder / "template" / "__pycache__" / "x.pyc").write_bytes(b"\0")
    assert resource_source.resource_template() == first  # caches do not count
    write_resource_template(resource_folder, 2)
    second = resource_source.resource_template()
    assert second[0] == first[0] and second[1] != first[1]
    shutil.rmtree(resource_folder / "template" / "migrations")
    write_resource_template(resource_folder, 1)
    assert resource_source.resource_template() == first  # back to version 1: its tag again
    tags = git(Path(first[0]), "tag", "--list").split()
    assert sorted(tags) == sorted({first[1], second[1]})


def test_a_base_conflict_leaves_every_resource_pending(
    project: Path, resource_folder: Path
) -> None:
    add_two(project)
    health = project / "app/routers/health.py"
    lines = health.read_text().splitlines(keepends=True)
    health.write_text('"""Our own health endpoints."""\n' + "".join(lines[1:]))
    commit_all(project, "Our docstring")
    head = git(project, "rev-parse", "HEAD")
    write_resource_template(resource_folder, 2)

    code, output = cli("update", str(project), "--vcs-ref", NEW, "--no-install", "--trust")

    assert code == 1, output
    assert "conflict (base) app/routers/health.py" in output
    for name in ("customer", "invoice"):
        assert f"not updated: .copier-answers.resource-{name}.yml" in output
        assert not (project / f"migrations/versions/{name}_0002_{name}s.py").exists()
    assert "run `backforge update` again" in output
    assert git(project, "rev-parse", "HEAD") == head


def test_a_foreign_resource_source_needs_trust(project: Path, resource_folder: Path) -> None:
    add_two(project)
    customer = answers(project, "customer")
    assert resource_source.update_ref(customer, trust=False) == customer["_commit"]
    foreign = dict(customer, _src_path=str(project.parent / "foreign-resource"))
    with pytest.raises(UsageError) as raised:
        resource_source.update_ref(foreign, trust=False)
    assert f"the resource 'customer' comes from {foreign['_src_path']}" in str(raised.value)
    assert "--trust" in str(raised.value)
    assert resource_source.update_ref(foreign, trust=True) is None  # its latest tag


def test_a_render_never_replaces_a_file(project: Path, resource_folder: Path) -> None:
    (resource_folder / "template/docs").mkdir()
    (resource_folder / "template/docs/{{ resource }}.md.jinja").write_text("# {{ class_name }}\n")
    (project / "docs").mkdir()
    (project / "docs/customer.md").write_text("# Our customer notes\n")
    commit_all(project, "Our notes")
    before = snapshot(project)
    code, output = cli("add", "resource", "customer", "-f", "name:str", "-C", str(project))
    assert code == 2, output
    assert "NAME 'customer': the resource would replace files the project already has" in output
    assert "docs/customer.md" in output
    assert snapshot(project) == before
