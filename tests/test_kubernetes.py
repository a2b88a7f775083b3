"""The `kubernetes` question and the static tier's kubernetes step (steps/kubernetes.py): the
rendered overlays build, pass kubernetes-validate --strict for the oldest and newest versions it
knows and our own policy; a broken manifest fails with a message naming the object and the rule."""

from __future__ import annotations

import copy
import functools
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from backforge.cli import app
from backforge.render import render
from backforge.steps import kubernetes as k8s
from backforge.steps.results import StepFailed

REPO = Path(__file__).resolve().parents[1]
needs_kustomize = pytest.mark.skipif(
    shutil.which("kubectl") is None and shutil.which("kustomize") is None,
    reason="kubectl or kustomize is needed (.ci/run checks for it)",
)

Manifest = dict[str, Any]


@functools.cache
def rendered(tmp_root: str, database: str, features: tuple[str, ...]) -> Path:
    dest = Path(tmp_root) / f"{database}-{'-'.join(features) or 'plain'}"
    answers = {
        "project_name": "Shop",
        "database": database,
        "features": list(features),
        "kubernetes": True,
    }
    render(str(REPO), dest, answers, vcs_ref="HEAD")
    return dest


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(tmp_path_factory.mktemp("k8s"))


@pytest.fixture(scope="module")
def jobs_project(root: str) -> Path:
    return rendered(root, "postgresql", ("jobs", "metrics"))


@pytest.fixture(scope="module")
def production(jobs_project: Path) -> list[Manifest]:
    return k8s.build_overlay(jobs_project / k8s.DEPLOY_DIR / "overlays" / "production")


def by_name(docs: list[Manifest], kind: str, suffix: str) -> Manifest:
    return next(d for d in docs if d["kind"] == kind and d["metadata"]["name"].endswith(suffix))


@needs_kustomize
def test_rendered_overlays_build_validate_and_pass_the_policy(
    jobs_project: Path, production: list[Manifest]
) -> None:
    summary = k8s.check_deploy(jobs_project)
    oldest, newest = k8s.checked_versions()
    assert oldest < newest and f"{oldest} and {newest}" in summary
    kinds = sorted(d["kind"] for d in production)
    workloads = ["Deployment", "Deployment", "Deployment", "Job"]
    assert kinds == sorted(
        [
            *workloads,
            "ConfigMap",
            "Service",
            "HorizontalPodAutoscaler",
            "PodDisruptionBudget",
            "Ingress",
        ]
    )
    assert all(d["metadata"]["namespace"] == "shop" for d in production)
    scheduler = by_name(production, "Deployment", "-scheduler")["spec"]
    assert scheduler["replicas"] == 1 and scheduler["strategy"] == {"type": "Recreate"}
    api = by_name(production, "Deployment", "-api")["spec"]["template"]
    assert api["metadata"]["annotations"]["prometheus.io/scrape"] == "true"
    assert {"name": "prometheus", "emptyDir": {"sizeLimit": "64Mi"}} in api["spec"]["volumes"]
    container = api["spec"]["containers"][0]
    assert container["image"] == "registry.example.com/shop:0.1.0"
    mount = {"name": "prometheus", "mountPath": "/tmp/prometheus"}  # noqa: S108 (in the pod)
    assert mount in container["volumeMounts"]
    config = by_name(production, "ConfigMap", "")
    assert config["metadata"]["name"].startswith("shop-config-")  # hashed: a change rolls pods
    assert container["envFrom"][0]["configMapRef"]["name"] == config["metadata"]["name"]
    assert not any(d["kind"] == "Secret" for d in production)
    example = (jobs_project / k8s.DEPLOY_DIR / "secret.env.example").read_text()
    assert "SECRET_KEY=" in example and "DATABASE_URL=postgresql://" in example
    assert "REDIS_URL=" in example


@needs_kustomize
def test_a_variant_without_jobs_or_metrics_has_neither(root: str) -> None:
    project = rendered(root, "mysql", ())
    docs = k8s.build_overlay(project / k8s.DEPLOY_DIR / "overlays" / "staging")
    assert sorted(d["metadata"]["name"] for d in docs if d["kind"] == "Deployment") == ["shop-api"]
    api = by_name(docs, "Deployment", "-api")["spec"]["template"]
    assert "annotations" not in api["metadata"]
    assert "REDIS_URL" not in (project / k8s.DEPLOY_DIR / "secret.env.example").read_text()
    assert k8s.policy_problems(docs, 20) == []


def _container(docs: list[Manifest], suffix: str = "-api") -> Manifest:
    container: Manifest = by_name(docs, "Deployment", suffix)["spec"]["template"]["spec"][
        "containers"
    ][0]
    return container


def _pod(docs: list[Manifest], suffix: str = "-api") -> Manifest:
    pod: Manifest = by_name(docs, "Deployment", suffix)["spec"]["template"]["spec"]
    return pod


def _add_secret(docs: list[Manifest]) -> None:
    docs.append({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "leak"}})


BREAKS: dict[str, tuple[Callable[[list[Manifest]], None], str]] = {
    "no-readiness": (
        lambda d: _container(d).pop("readinessProbe"),
        "Deployment/shop-api container api: serves on a port but has no readinessProbe",
    ),
    "latest-image": (
        lambda d: _container(d).update(image="registry.example.com/shop:latest"),
        "uses the `latest` tag",
    ),
    "untagged-image": (lambda d: _container(d).update(image="shop"), "has no tag"),
    "root": (
        lambda d: _pod(d)["securityContext"].pop("runAsNonRoot"),
        "Deployment/shop-api: securityContext.runAsNonRoot must be true",
    ),
    "no-limits": (
        lambda d: _container(d, "-worker")["resources"].pop("limits"),
        "Deployment/shop-worker container worker: no cpu in resources.limits",
    ),
    "writable-root": (
        lambda d: _container(d)["securityContext"].update(readOnlyRootFilesystem=False),
        "readOnlyRootFilesystem must be true",
    ),
    "capabilities": (
        lambda d: _container(d)["securityContext"].pop("capabilities"),
        "capabilities.drop must include ALL",
    ),
    "token": (
        lambda d: _pod(d).pop("automountServiceAccountToken"),
        "automountServiceAccountToken must be false",
    ),
    "short-grace": (
        lambda d: _pod(d).update(terminationGracePeriodSeconds=25),
        "terminationGracePeriodSeconds 25 must be above the preStop pause (5 s) plus the "
        "graceful shutdown (20 s)",
    ),
    "no-pre-stop": (lambda d: _container(d).pop("lifecycle"), "no preStop pause"),
    "two-schedulers": (
        lambda d: by_name(d, "Deployment", "-scheduler")["spec"].update(replicas=2),
        "a scheduler runs exactly one replica with the Recreate strategy",
    ),
    "no-autoscaler": (
        lambda d: d.remove(by_name(d, "HorizontalPodAutoscaler", "-api")),
        "serves but no HorizontalPodAutoscaler scales it",
    ),
    "no-budget": (
        lambda d: d.remove(by_name(d, "PodDisruptionBudget", "-api")),
        "serves but no PodDisruptionBudget covers its pods",
    ),
    "secret": (_add_secret, "Secret/leak: a Secret in the manifests"),
    "no-tmp": (
        lambda d: _container(d, "-worker").pop("volumeMounts"),
        "container worker: /tmp is not mounted",
    ),
}


@needs_kustomize
@pytest.mark.parametrize("name", list(BREAKS))
def test_the_policy_names_each_broken_rule(production: list[Manifest], name: str) -> None:
    docs = copy.deepcopy(production)
    assert k8s.policy_problems(docs, 20) == []
    breaking, message = BREAKS[name]
    breaking(docs)
    problems = k8s.policy_problems(docs, 20)
    assert any(message in problem for problem in problems), problems


@needs_kustomize
def test_strict_schemas_refuse_an_unknown_or_mistyped_field(production: list[Manifest]) -> None:
    docs = copy.deepcopy(production)
    assert k8s.schema_problems(docs, k8s.checked_versions()) == []
    _container(docs)["readinessProbes"] = {}
    by_name(docs, "HorizontalPodAutoscaler", "-api")["spec"]["minReplicas"] = "two"
    problems = k8s.schema_problems(docs, k8s.checked_versions())
    oldest, newest = k8s.checked_versions()
    for version in (oldest, newest):
        assert any(
            p.startswith(f"Deployment/shop-api (Kubernetes {version}) at spec.template.spec")
            and "readinessProbes" in p
            for p in problems
        ), problems
        assert any(
            p.startswith(
                f"HorizontalPodAutoscaler/shop-api (Kubernetes {version}) at spec.minReplicas"
            )
            for p in problems
        ), problems


@needs_kustomize
def test_a_broken_template_fails_the_step_with_the_overlay_and_the_rule(
    jobs_project: Path, tmp_path: Path
) -> None:
    project = tmp_path / "shop"
    shutil.copytree(jobs_project, project)
    api = project / k8s.DEPLOY_DIR / "base" / "api.yaml"
    api.write_text(api.read_text().replace("runAsNonRoot: true", "runAsNonRoot: false"))
    with pytest.raises(StepFailed) as caught:
        k8s.check_deploy(project)
    assert (
        "overlays/staging: Deployment/shop-api: securityContext.runAsNonRoot" in caught.value.output
    )
    assert "overlays/production: Deployment/shop-api" in caught.value.output
    kustomization = project / k8s.DEPLOY_DIR / "overlays" / "staging" / "kustomization.yaml"
    kustomization.write_text(kustomization.read_text().replace("../../base", "../../missing"))
    with pytest.raises(StepFailed, match="kustomize"):
        k8s.check_deploy(project)


def test_without_kubectl_or_kustomize_the_step_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(StepFailed, match="neither kubectl nor kustomize is on PATH"):
        k8s.kustomize_command()


@needs_kustomize
def test_identical_manifests_are_checked_once(jobs_project: Path, tmp_path: Path) -> None:
    twin = tmp_path / "twin"
    shutil.copytree(jobs_project, twin)
    plain = tmp_path / "plain"
    (plain / "app").mkdir(parents=True)
    files = {
        vid: {
            p.relative_to(project).as_posix(): p.read_bytes()
            for p in project.rglob("*")
            if p.is_file()
        }
        for vid, project in {"a": jobs_project, "b": twin, "c": plain}.items()
    }
    results = k8s.kubernetes_variants({"a": jobs_project, "b": twin, "c": plain}, files)
    assert results["a"].status == results["b"].status == "passed"
    assert results["a"].output == results["b"].output and "strict" in results["a"].output
    assert results["c"].output == "no deploy/kubernetes"
    assert results["a"].seconds == results["b"].seconds


@pytest.mark.parametrize(
    ("answers", "message"),
    [
        (["-d", "docker=false"], "kubernetes needs docker"),
        (["-d", "database=sqlite"], "kubernetes needs a database server"),
    ],
    ids=["without-docker", "sqlite"],
)
def test_kubernetes_is_refused_where_it_cannot_run(
    tmp_path: Path, answers: list[str], message: str
) -> None:
    dest = tmp_path / "shop"
    args = ["new", str(dest), "--defaults", "-d", "project_name=Shop", "-d", "kubernetes=true"]
    result = CliRunner().invoke(app, [*args, *answers, "--no-install"])
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert not dest.exists()


def test_plain_copier_names_the_fix_when_kubernetes_is_set_without_docker(tmp_path: Path) -> None:
    with pytest.raises(Exception, match="kubernetes needs docker") as caught:
        render(
            str(REPO),
            tmp_path / "shop",
            {"project_name": "Shop", "database": "postgresql", "docker": False, "kubernetes": True},
            vcs_ref="HEAD",
        )
    assert "set docker=true, or kubernetes=false" in str(caught.value)
    assert not (tmp_path / "shop").exists()


@needs_kustomize
def test_the_readme_gives_the_rollout_sequence_and_its_selector_picks_config_and_job(
    jobs_project: Path, production: list[Manifest]
) -> None:
    readme = (jobs_project / "README.md").read_text(encoding="utf-8")
    section = readme.split("### Kubernetes", 1)[1].split("\n## ", 1)[0]
    steps = [
        "create secret generic shop-secrets --from-env-file=",
        "delete job shop-migrate --ignore-not-found",
        "kubectl apply -k $OVERLAY -l 'app.kubernetes.io/component in (config,migrate)'",
        "wait --for=condition=complete job/shop-migrate",
        "kubectl apply -k $OVERLAY\n",
        "rollout status deployment/shop-api",
    ]
    positions = [section.find(step) for step in steps]
    assert -1 not in positions and positions == sorted(positions), positions
    assert "PROMETHEUS_MULTIPROC_DIR" in section and "ServiceMonitor" in section
    first = {
        d["kind"]
        for d in production
        if d["metadata"]["labels"].get("app.kubernetes.io/component") in ("config", "migrate")
    }
    assert first == {"ConfigMap", "Job"}  # what the migration Job needs, and nothing that serves


def test_a_project_without_kubernetes_has_no_manifests_nor_section(root: str) -> None:
    dest = Path(root) / "no-k8s"
    render(str(REPO), dest, {"project_name": "Shop", "database": "postgresql"}, vcs_ref="HEAD")
    assert not (dest / "deploy").exists()
    assert "### Kubernetes" not in (dest / "README.md").read_text(encoding="utf-8")


UVICORN_SETTINGS = {"FORWARDED_ALLOW_IPS"}  # read by uvicorn itself (a setting with rate_limit)


def test_every_configured_key_is_a_setting_of_the_app(root: str) -> None:
    """config.env and secret.env.example name only the app's settings (or uvicorn's): a key
    spelled wrong would be ignored (extra="ignore") and the default would run in production."""
    features = ("cache", "jobs", "email", "metrics", "sentry", "billing", "oidc", "totp", "admin")
    project = rendered(root, "mysql", features)
    config_py = (project / "app" / "core" / "config.py").read_text(encoding="utf-8")
    fields = {name.upper() for name in re.findall(r"^    (\w+): ", config_py, re.MULTILINE)}
    deploy = project / k8s.DEPLOY_DIR
    for relative in ("base/config.env", "secret.env.example"):
        keys = {
            line.split("=", 1)[0]
            for line in (deploy / relative).read_text(encoding="utf-8").splitlines()
            if line and not line.startswith("#")
        }
        assert keys, relative
        assert keys - fields - UVICORN_SETTINGS == set(), relative
    secret = (deploy / "secret.env.example").read_text(encoding="utf-8")
    required = ("SECRET_KEY", "DATABASE_URL=mysql://", "REDIS_URL", "SMTP_PASSWORD", "SENTRY_DSN")
    # Billing's keys and prices (production refuses to start without them), oidc's providers.
    secrets = ("STRIPE_SECRET_KEY", "STRIPE_WEBHOOK_SECRET", "STRIPE_PRICES", "OIDC_PROVIDERS")
    for key in (*required, *secrets):
        assert key in secret, key


@needs_kustomize
def test_the_cached_validators_judge_as_kubernetes_validate_does(
    production: list[Manifest],
) -> None:
    """schema_problems builds each validator once (kubernetes_validate.validate reads 1.8 MB of
    definitions per object): on a valid object and a broken one, both agree."""
    from kubernetes_validate import utils

    broken = copy.deepcopy(by_name(production, "Deployment", "-api"))
    broken["spec"]["template"]["spec"]["containers"][0]["readinessProbes"] = {}
    for version in k8s.checked_versions():
        for doc in production:
            utils.validate(doc, version, strict=True)
        assert k8s.schema_problems(production, [version]) == []
        with pytest.raises(utils.ValidationError) as caught:
            utils.validate(broken, version, strict=True)
        (problem,) = k8s.schema_problems([broken], [version])
        assert caught.value.message in problem
    unknown = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}
    oldest = k8s.checked_versions()[0]
    (problem,) = k8s.schema_problems([unknown], [oldest])
    assert problem.startswith(
        f"Widget/w (Kubernetes {oldest}): Couldn't find schema for kind Widget"
    )
