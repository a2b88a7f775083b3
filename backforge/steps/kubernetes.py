"""The static tier's `kubernetes` step: each variant's `deploy/kubernetes/` overlays built as
they are applied (`kubectl kustomize`, or `kustomize build`), every object validated with
kubernetes-validate's strict schemas for the oldest and the newest Kubernetes minor it knows,
then held to our own rules (`policy_problems`). Variants whose manifests (and Dockerfile) are
identical are checked once."""

from __future__ import annotations

import functools
import re
import shutil
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Final

import yaml
from jsonschema import Draft202012Validator
from kubernetes_validate import utils as kubernetes_validate
from referencing import Registry, Resource

from backforge.steps.results import Status, Step, StepFailed, StepResult
from backforge.steps.tools import run_tool

DEPLOY_DIR: Final = "deploy/kubernetes"
OVERLAYS: Final = ("staging", "production")
GRACEFUL_SHUTDOWN = re.compile(r"UVICORN_TIMEOUT_GRACEFUL_SHUTDOWN=(\d+)")
TMP: Final = "/tmp"  # noqa: S108 (a path inside the container, mounted as an emptyDir)
"""Where Python and uvicorn write; with a read-only root filesystem it must be a volume."""
WORKLOADS: Final = frozenset({"Deployment", "Job", "StatefulSet", "DaemonSet"})

Manifest = dict[str, Any]


def kustomize_command() -> list[str]:
    """How to build an overlay here: `kustomize build` or `kubectl kustomize`, else a clear
    StepFailed saying what to install."""
    if found := shutil.which("kustomize"):
        return [found, "build"]
    if found := shutil.which("kubectl"):
        return [found, "kustomize"]
    raise StepFailed(
        "neither kubectl nor kustomize is on PATH: the kubernetes step builds each overlay of "
        f"{DEPLOY_DIR} with `kubectl kustomize` (kustomize v5; kubectl 1.27 or newer). "
        "Install kubectl (or kustomize) and run the check again."
    )


def build_overlay(overlay: Path) -> list[Manifest]:
    """The objects an overlay applies, as `kubectl apply -k` would send them."""
    output = run_tool([*kustomize_command(), str(overlay)], overlay, timeout=120)
    return [doc for doc in yaml.safe_load_all(output) if doc]


@functools.cache
def checked_versions() -> tuple[str, ...]:
    """The oldest and the newest Kubernetes versions kubernetes-validate has schemas for."""
    versions = kubernetes_validate.all_versions()
    return (versions[0], versions[-1])


def _name(doc: Manifest) -> str:
    metadata = doc.get("metadata") or {}
    return f"{doc.get('kind')}/{metadata.get('name')}"


@functools.cache
def _definitions(directory: str, version: str) -> Resource[Any]:
    """A version's shared definitions (1.8 MB of JSON): read once per run, not once per object
    as `kubernetes_validate.validate` does (that was most of the step's time)."""
    contents = kubernetes_validate.schema_contents(f"{directory}/_definitions.json", version)
    return Resource.from_contents(contents)


@functools.cache
def _validator(version: str, kind: str, api_version: str) -> Draft202012Validator:
    """kubernetes-validate's strict schema of a kind, for one of its exact versions, built as
    its `validate` builds it (same files, same draft, same registry)."""
    directory = f"kubernetes-json-schema/v{version}-local-strict"
    group = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    try:
        schema = kubernetes_validate.schema_contents(
            f"{directory}/{kind.lower()}-{group}.json", version
        )
    except FileNotFoundError as error:
        raise kubernetes_validate.SchemaNotFoundError(
            version=version, kind=kind, api_version=api_version
        ) from error
    registry: Registry[Any] = Resource.from_contents(schema) @ Registry()
    registry = _definitions(directory, version) @ registry
    return Draft202012Validator(schema, registry=registry)


def schema_problems(docs: Iterable[Manifest], versions: Sequence[str]) -> list[str]:
    """kubernetes-validate --strict (unknown fields refused) for each object and version (exact
    versions of `kubernetes_validate.all_versions()`): every error, by path."""
    problems: list[str] = []
    for doc in docs:
        for version in versions:
            try:
                validator = _validator(version, str(doc.get("kind")), str(doc.get("apiVersion")))
            except kubernetes_validate.SchemaNotFoundError as error:
                problems.append(f"{_name(doc)} (Kubernetes {version}): {error.message}")
                continue
            for found in sorted(validator.iter_errors(doc), key=lambda e: list(map(str, e.path))):
                where = ".".join(str(part) for part in found.path) or "(top)"
                problems.append(f"{_name(doc)} (Kubernetes {version}) at {where}: {found.message}")
    return problems


def _pod_spec(doc: Manifest) -> Manifest:
    template = (doc.get("spec") or {}).get("template") or {}
    spec = template.get("spec")
    return spec if isinstance(spec, dict) else {}


def _image_problem(image: str) -> str | None:
    if "@sha256:" in image:
        return None
    last = image.rsplit("/", 1)[-1]
    if ":" not in last:
        return f"image {image!r} has no tag (it would run `latest`): pin a release tag"
    if last.rsplit(":", 1)[1] == "latest":
        return f"image {image!r} uses the `latest` tag: pin a release tag"
    return None


def _pre_stop_seconds(container: Manifest) -> int | None:
    pre_stop = (container.get("lifecycle") or {}).get("preStop") or {}
    if "sleep" in pre_stop:
        return int(pre_stop["sleep"].get("seconds", 0))
    command = (pre_stop.get("exec") or {}).get("command") or []
    if len(command) == 2 and command[0] == "sleep" and str(command[1]).isdigit():
        return int(command[1])
    return None


def _container_problems(container: Manifest, where: str) -> list[str]:
    problems: list[str] = []
    image_problem = _image_problem(str(container.get("image", "")))
    if image_problem:
        problems.append(f"{where}: {image_problem}")
    resources = container.get("resources") or {}
    for kind in ("requests", "limits"):
        for resource in ("cpu", "memory"):
            if resource not in (resources.get(kind) or {}):
                problems.append(f"{where}: no {resource} in resources.{kind}")
    security = container.get("securityContext") or {}
    if security.get("readOnlyRootFilesystem") is not True:
        problems.append(f"{where}: securityContext.readOnlyRootFilesystem must be true")
    if security.get("allowPrivilegeEscalation") is not False:
        problems.append(f"{where}: securityContext.allowPrivilegeEscalation must be false")
    if "ALL" not in ((security.get("capabilities") or {}).get("drop") or []):
        problems.append(f"{where}: securityContext.capabilities.drop must include ALL")
    return problems


def _serving_problems(
    pod: Manifest, container: Manifest, where: str, graceful_seconds: int
) -> list[str]:
    """A container that serves traffic (it has ports): probes, preStop, the grace period."""
    problems = [
        f"{where}: serves on a port but has no {probe}"
        for probe in ("startupProbe", "livenessProbe", "readinessProbe")
        if probe not in container
    ]
    paths = {
        probe: ((container.get(probe) or {}).get("httpGet") or {}).get("path")
        for probe in ("livenessProbe", "readinessProbe")
    }
    if paths["livenessProbe"] not in (None, "/health"):
        problems.append(
            f"{where}: livenessProbe must be /health (no I/O), not {paths['livenessProbe']}"
        )
    if paths["readinessProbe"] not in (None, "/ready"):
        problems.append(f"{where}: readinessProbe must be /ready, not {paths['readinessProbe']}")
    pause = _pre_stop_seconds(container)
    if pause is None:
        problems.append(
            f"{where}: no preStop pause (lifecycle.preStop: sleep), so the load balancer still "
            "routes to it after SIGTERM"
        )
    grace = pod.get("terminationGracePeriodSeconds", 30)
    needed = (pause or 0) + graceful_seconds
    if grace <= needed:
        problems.append(
            f"{where}: terminationGracePeriodSeconds {grace} must be above the preStop pause "
            f"({pause or 0} s) plus the graceful shutdown ({graceful_seconds} s)"
        )
    return problems


def _workload_problems(doc: Manifest, graceful_seconds: int) -> list[str]:
    name = _name(doc)
    pod = _pod_spec(doc)
    problems: list[str] = []
    if pod.get("automountServiceAccountToken") is not False:
        problems.append(f"{name}: automountServiceAccountToken must be false")
    if (pod.get("securityContext") or {}).get("runAsNonRoot") is not True:
        problems.append(f"{name}: securityContext.runAsNonRoot must be true")
    mounts_needed = []
    for container in [*pod.get("initContainers", []), *pod.get("containers", [])]:
        where = f"{name} container {container.get('name')}"
        problems += _container_problems(container, where)
        if container.get("ports"):
            problems += _serving_problems(pod, container, where, graceful_seconds)
        if not any(m.get("mountPath") == TMP for m in container.get("volumeMounts") or []):
            mounts_needed.append(where)
    problems += [
        f"{where}: /tmp is not mounted (the root filesystem is read-only)"
        for where in mounts_needed
    ]
    return problems


def _selects(selector: Mapping[str, Any], labels: Mapping[str, Any]) -> bool:
    wanted = selector.get("matchLabels") or {}
    return bool(wanted) and all(labels.get(k) == v for k, v in wanted.items())


def policy_problems(docs: Sequence[Manifest], graceful_seconds: int) -> list[str]:
    """Our rules for what an overlay applies: non-root, read-only, limits, pinned images, probes
    and a graceful stop for what serves, an autoscaler and a disruption budget for every serving
    Deployment, a single Recreate scheduler, and no Secret in the repository."""
    problems: list[str] = []
    scaled = {
        (doc.get("spec") or {}).get("scaleTargetRef", {}).get("name")
        for doc in docs
        if doc.get("kind") == "HorizontalPodAutoscaler"
    }
    budgets = [
        (doc.get("spec") or {}).get("selector") or {}
        for doc in docs
        if doc.get("kind") == "PodDisruptionBudget"
    ]
    for doc in docs:
        kind, name = doc.get("kind"), _name(doc)
        if kind == "Secret":
            problems.append(f"{name}: a Secret in the manifests; the repository must not hold one")
        if kind not in WORKLOADS:
            continue
        problems += _workload_problems(doc, graceful_seconds)
        if kind != "Deployment":
            continue
        spec = doc.get("spec") or {}
        labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
        single = (
            spec.get("replicas") == 1 and (spec.get("strategy") or {}).get("type") == "Recreate"
        )
        if labels.get("app.kubernetes.io/component") == "scheduler" and not single:
            problems.append(
                f"{name}: a scheduler runs exactly one replica with the Recreate strategy"
            )
        if any(c.get("ports") for c in _pod_spec(doc).get("containers", [])):
            if doc["metadata"]["name"] not in scaled:
                problems.append(f"{name}: serves but no HorizontalPodAutoscaler scales it")
            if not any(_selects(selector, labels) for selector in budgets):
                problems.append(f"{name}: serves but no PodDisruptionBudget covers its pods")
    return problems


def graceful_shutdown_seconds(dockerfile: Path) -> int:
    """The image's UVICORN_TIMEOUT_GRACEFUL_SHUTDOWN (uvicorn's default, none, when unset)."""
    found = (
        GRACEFUL_SHUTDOWN.search(dockerfile.read_text(encoding="utf-8"))
        if dockerfile.is_file()
        else None
    )
    return int(found.group(1)) if found else 0


def check_deploy(project: Path) -> str:
    """Build, validate and police one project's overlays; a summary, or StepFailed naming every
    problem with its overlay."""
    graceful = graceful_shutdown_seconds(project / "Dockerfile")
    versions = checked_versions()
    problems: list[str] = []
    counts: list[str] = []
    for overlay in OVERLAYS:
        docs = build_overlay(project / DEPLOY_DIR / "overlays" / overlay)
        found = schema_problems(docs, versions) + policy_problems(docs, graceful)
        problems += [f"overlays/{overlay}: {problem}" for problem in found]
        counts.append(f"{overlay} {len(docs)} objects")
    if problems:
        raise StepFailed(f"{DEPLOY_DIR}:\n" + "\n".join(problems))
    return f"{', '.join(counts)}; valid for Kubernetes {' and '.join(versions)} (strict), policy ok"


def deploy_key(files: Mapping[str, Any]) -> tuple[tuple[str, str], ...] | None:
    """What a variant's manifests depend on (its deploy/kubernetes files and its Dockerfile,
    by path and content), or None when it has none."""
    prefix = DEPLOY_DIR + "/"
    deploy = sorted((path, str(key)) for path, key in files.items() if path.startswith(prefix))
    if not deploy:
        return None
    dockerfile = files.get("Dockerfile")
    return (*deploy, ("Dockerfile", str(dockerfile)))


def kubernetes_variants(
    projects: Mapping[str, Path], files: Mapping[str, Mapping[str, Any]]
) -> dict[str, StepResult]:
    """The `kubernetes` step of many variants: each distinct deploy content checked once."""
    results: dict[str, StepResult] = {}
    groups: dict[tuple[tuple[str, str], ...], list[str]] = {}
    for vid in projects:
        key = deploy_key(files.get(vid, {}))
        if key is None:
            results[vid] = StepResult(Step.KUBERNETES, "passed", 0.0, "no deploy/kubernetes")
        else:
            groups.setdefault(key, []).append(vid)
    for members in groups.values():
        started = time.perf_counter()
        status: Status = "passed"
        try:
            output = check_deploy(projects[members[0]])
        except StepFailed as error:
            status, output = "failed", error.output
        share = (time.perf_counter() - started) / len(members)
        for vid in members:
            results[vid] = StepResult(Step.KUBERNETES, status, share, output)
    return results
