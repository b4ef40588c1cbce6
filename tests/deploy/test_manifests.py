"""What deploys mercato agrees with mercato: profiles, ports, probes, shutdown timing, security.

``deploy/validate.sh`` (``make validate-deploy``) checks the manifests against the Kubernetes
schemas; these tests check what a schema cannot: that the numbers and names in the manifests
match the application's settings and behaviour. They render with the pinned kubectl of the
``deploy`` extra, offline.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from mercato.config import ConfigurationError, Settings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
BIN = Path(sys.executable).parent
OVERLAYS = {"dev": 1, "staging": 3, "production": 10}
SECRETS = {
    "database_url": "postgresql://mercato@db.internal:5432/mercato",
    "token_secret": "s" * 48,
    "stripe_secret_key": "sk_live_" + "s" * 40,
}
PROVIDERS = {"dev": "sandbox", "staging": "sandbox", "production": "stripe"}


def _tool(name: str) -> str:
    path = BIN / name
    if not path.exists():
        pytest.fail(f"{path} is missing: install the deploy extra (make install)")
    return str(path)


@cache
def render(target: str, image: str = "", tag: str = "") -> tuple[dict[str, Any], ...]:
    if image:
        command = [str(DEPLOY / "render.sh"), target, image, tag]
        env = {"KUBECTL": _tool("kubectl"), "PATH": "/usr/bin:/bin"}
    else:
        command = [_tool("kubectl"), "kustomize", str(DEPLOY / "k8s" / "overlays" / target)]
        env = None
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, env=env, check=True)
    return tuple(doc for doc in yaml.safe_load_all(done.stdout) if doc)


def one(docs: tuple[dict[str, Any], ...], kind: str, name: str | None = None) -> dict[str, Any]:
    found = [d for d in docs if d["kind"] == kind and name in (None, d["metadata"]["name"])]
    assert len(found) == 1, (kind, name, [d["metadata"]["name"] for d in found])
    return found[0]


def config_of(docs: tuple[dict[str, Any], ...]) -> dict[str, str]:
    return dict(one(docs, "ConfigMap")["data"])


def pod_spec(docs: tuple[dict[str, Any], ...], name: str = "mercato") -> dict[str, Any]:
    return dict(one(docs, "Deployment", name)["spec"]["template"]["spec"])


def every_container(docs: tuple[dict[str, Any], ...]) -> list[dict[str, Any]]:
    containers = []
    for doc in docs:
        if doc["kind"] in ("Deployment", "Job"):
            spec = doc["spec"]["template"]["spec"]
            containers += spec.get("initContainers", []) + spec["containers"]
    return containers


@pytest.mark.parametrize(("overlay", "replicas"), OVERLAYS.items())
def test_each_overlay_runs_its_profile_with_the_replicas_of_the_matrix(
    overlay: str, replicas: int
) -> None:
    docs = render(overlay)
    assert {d["metadata"].get("namespace") for d in docs} == {overlay}
    config = config_of(docs)
    assert config["MERCATO_ENV"] == overlay
    # the autoscaler owns the count: a replicas field would reset a scaled-out Deployment to
    # its minimum on every apply, in the middle of a deploy
    assert "replicas" not in one(docs, "Deployment")["spec"]
    autoscaler = one(docs, "HorizontalPodAutoscaler")["spec"]
    assert autoscaler["minReplicas"] == replicas
    assert autoscaler["maxReplicas"] >= replicas
    assert autoscaler["scaleTargetRef"]["name"] == one(docs, "Deployment")["metadata"]["name"]
    assert config["MERCATO_FEATURE_API_DOCS"] == str(overlay != "production").lower()


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_each_overlays_configuration_is_valid_for_its_profile(
    overlay: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name, value in SECRETS.items():
        (tmp_path / name).write_text(value + "\n")
    for variable in [v for v in os.environ if v.upper().startswith("MERCATO_")]:
        monkeypatch.delenv(variable)
    config = config_of(render(overlay))
    known = {f"MERCATO_{field.upper()}" for field in Settings.model_fields}
    assert set(config) <= known, set(config) - known
    for name, value in config.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("MERCATO_SECRETS_DIR", str(tmp_path))
    settings = Settings()  # refuses to build when the profile's checks fail
    assert settings.env.value == overlay
    assert settings.host == "0.0.0.0"
    assert settings.source_of("token_secret").value == "secrets-dir"
    assert settings.payment_provider.value == PROVIDERS[overlay]
    assert not settings.sandbox_override_active


@pytest.mark.parametrize("target", ["production", "production-canary", "migrate:production"])
def test_production_charges_through_stripe_with_its_key_from_the_secret(
    target: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    docs = render(target, "registry.example/mercato", "abc123")
    for variable in [v for v in os.environ if v.upper().startswith("MERCATO_")]:
        monkeypatch.delenv(variable)
    if target.startswith("migrate"):
        container = one(docs, "Job")["spec"]["template"]["spec"]["containers"][0]
        config = {e["name"]: e["value"] for e in container["env"]}
    else:
        config = config_of(docs)
        container = pod_spec(docs, one(docs, "Deployment")["metadata"]["name"])["containers"][0]
        config |= {e["name"]: e["value"] for e in container["env"]}
    assert config["MERCATO_PAYMENT_PROVIDER"] == "stripe"
    assert "MERCATO_ALLOW_SANDBOX_PAYMENTS_IN_PRODUCTION" not in config
    assert not [v for v in config if v.startswith("MERCATO_STRIPE_SECRET_KEY")], "a secret"
    for name, value in config.items():
        monkeypatch.setenv(name, value)
    for name, value in SECRETS.items():
        (tmp_path / name).write_text(value + "\n")
    monkeypatch.setenv("MERCATO_SECRETS_DIR", str(tmp_path))
    settings = Settings()
    assert settings.source_of("stripe_secret_key").value == "secrets-dir"
    (tmp_path / "stripe_secret_key").unlink()  # a Secret without the key: refused at start
    with pytest.raises(ConfigurationError, match="MERCATO_STRIPE_SECRET_KEY is required"):
        Settings()


@pytest.mark.parametrize("overlay", [*OVERLAYS, "production-canary"])
def test_probes_point_at_the_lifecycle_endpoints_on_the_served_port(overlay: str) -> None:
    docs = render(overlay)
    container = pod_spec(
        docs, next(d["metadata"]["name"] for d in docs if d["kind"] == "Deployment")
    )["containers"][0]
    port = next(p for p in container["ports"] if p["name"] == "http")
    assert port["containerPort"] == int(config_of(docs)["MERCATO_PORT"])
    probes = {
        kind: container[f"{kind}Probe"]["httpGet"] for kind in ("startup", "readiness", "liveness")
    }
    assert {kind: probe["path"] for kind, probe in probes.items()} == {
        "startup": "/startupz",
        "readiness": "/readyz",
        "liveness": "/livez",
    }
    assert {probe["port"] for probe in probes.values()} == {"http"}
    # liveness gives up later than readiness: a slow moment takes the pod out of traffic
    # long before it would be restarted
    live, ready = container["livenessProbe"], container["readinessProbe"]
    assert live["periodSeconds"] * live["failureThreshold"] > (
        ready["periodSeconds"] * ready["failureThreshold"]
    )


def _selects(service: dict[str, Any], pod_labels: dict[str, str]) -> bool:
    return bool(service["spec"]["selector"].items() <= pod_labels.items())


@pytest.mark.parametrize("overlay", [*OVERLAYS, "production-canary"])
def test_the_api_service_never_exposes_the_metrics_port(overlay: str) -> None:
    docs = render(overlay)
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports["metrics"] == int(config_of(docs)["MERCATO_METRICS_PORT"])
    assert ports["metrics"] != ports["http"]
    api = one(docs, "Service", deployment["metadata"]["name"])
    assert [(p["name"], p["targetPort"]) for p in api["spec"]["ports"]] == [("http", "http")]
    for service in (d for d in docs if d["kind"] == "Service"):
        if service["metadata"]["name"] == "mercato-metrics":
            continue
        targets = {p["targetPort"] for p in service["spec"]["ports"]}
        assert not targets & {"metrics", ports["metrics"]}, service["metadata"]["name"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_prometheus_reaches_every_pod_on_its_metrics_port_through_a_headless_service(
    overlay: str,
) -> None:
    docs = render(overlay)
    service = one(docs, "Service", "mercato-metrics")
    assert service["spec"]["clusterIP"] == "None"
    assert service["spec"]["publishNotReadyAddresses"] is True, "starting and draining pods too"
    assert [(p["name"], p["targetPort"]) for p in service["spec"]["ports"]] == [
        ("metrics", "metrics")
    ]
    pods = one(docs, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert _selects(service, pods)
    canary = one(render("production-canary"), "Deployment", "mercato-canary")
    if overlay == "production":
        assert _selects(service, canary["spec"]["template"]["metadata"]["labels"])


def test_the_canary_adds_no_second_metrics_service() -> None:
    assert not [
        d
        for d in render("production-canary")
        if d["metadata"]["name"].startswith("mercato-metrics")
    ]


@pytest.mark.parametrize("overlay", [*OVERLAYS, "production-canary"])
def test_the_grace_period_covers_prestop_drain_grace_and_stopping(overlay: str) -> None:
    docs = render(overlay)
    spec = pod_spec(docs, next(d["metadata"]["name"] for d in docs if d["kind"] == "Deployment"))
    config = config_of(docs)
    pre_stop = spec["containers"][0]["lifecycle"]["preStop"]["sleep"]["seconds"]
    drain = float(config["MERCATO_SHUTDOWN_DRAIN_S"])
    grace = float(config["MERCATO_SHUTDOWN_GRACE_S"])
    stopping = 10 + 5  # workers finish their item (WorkerRunner.stop), the pool closes
    assert drain > 0, "readiness must fail before the listener closes"
    assert spec["terminationGracePeriodSeconds"] >= pre_stop + drain + grace + stopping


@pytest.mark.parametrize(
    "target", [*OVERLAYS, "production-canary", "migrate:staging", "backup:production"]
)
def test_every_container_is_unprivileged_read_only_and_bounded(target: str) -> None:
    docs = render(target, "registry.example/mercato", "abc123") if ":" in target else render(target)
    containers = every_container(docs)
    assert containers
    for container in containers:
        security = container["securityContext"]
        assert security["allowPrivilegeEscalation"] is False, container["name"]
        assert security["readOnlyRootFilesystem"] is True, container["name"]
        assert security["runAsNonRoot"] is True, container["name"]
        assert security["capabilities"]["drop"] == ["ALL"], container["name"]
        for kind in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(container["resources"][kind]), container["name"]
        assert not container["image"].endswith(":latest")


def test_pods_wait_for_a_schema_they_run_on_and_never_migrate() -> None:
    spec = pod_spec(render("production"))
    (init,) = spec["initContainers"]
    (server,) = spec["containers"]
    assert init["args"] == ["db", "check", "--wait", "600"]
    assert server["args"] == ["serve"]
    assert init["image"] == server["image"]
    assert init["envFrom"] == server["envFrom"]


def test_the_canary_shares_the_service_but_not_the_stable_selector() -> None:
    stable, canary = render("production"), render("production-canary")
    stable_selector = one(stable, "Deployment")["spec"]["selector"]["matchLabels"]
    canary_deployment = one(canary, "Deployment", "mercato-canary")
    canary_labels = canary_deployment["spec"]["template"]["metadata"]["labels"]
    assert canary_deployment["spec"]["replicas"] == 1
    assert stable_selector["track"] == "stable"
    assert canary_labels["track"] == "canary"
    service = one(stable, "Service", "mercato")["spec"]["selector"]
    assert service.items() <= canary_labels.items(), "the production Service must reach the canary"
    assert not stable_selector.items() <= canary_labels.items(), "stable must not adopt canary pods"
    assert one(canary, "Service", "mercato-canary")["spec"]["selector"]["track"] == "canary"
    assert not [
        d for d in canary if d["kind"] in ("HorizontalPodAutoscaler", "PodDisruptionBudget")
    ]
    assert {d["metadata"]["namespace"] for d in canary} == {"production"}


@pytest.mark.parametrize("target", ["staging", "production-canary", "migrate:production"])
def test_render_sets_the_image_of_every_container(target: str) -> None:
    docs = render(target, "ghcr.io/acme/mercato", "0123456789ab")
    images = {c["image"] for c in every_container(docs)}
    assert images == {"ghcr.io/acme/mercato:0123456789ab"}


def test_render_names_each_migration_after_its_image_and_sets_the_profile() -> None:
    job = one(render("migrate:staging", "ghcr.io/acme/mercato", "0123456789ab"), "Job")
    assert job["metadata"]["name"] == "mercato-migrate-0123456789ab"
    assert job["metadata"]["namespace"] == "staging"
    env = {e["name"]: e["value"] for e in job["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["MERCATO_ENV"] == "staging"


def test_the_contract_step_runs_every_migration_after_promotion_and_the_release_step_not() -> None:
    release = one(render("migrate:production", "ghcr.io/acme/mercato", "0123456789ab"), "Job")
    contract = one(render("contract:production", "ghcr.io/acme/mercato", "0123456789ab"), "Job")
    assert release["spec"]["template"]["spec"]["containers"][0]["args"] == [
        "db",
        "upgrade",
        "--pre-deploy",
    ]
    assert contract["spec"]["template"]["spec"]["containers"][0]["args"] == ["db", "upgrade"]
    assert contract["metadata"]["name"] == "mercato-migrate-post-0123456789ab"
    assert contract["metadata"]["namespace"] == "production"


@pytest.mark.parametrize(
    "args",
    [
        ("nowhere", "ghcr.io/acme/mercato", "abc"),
        ("migrate:moon", "ghcr.io/acme/mercato", "abc"),
        ("staging", "ghcr.io/acme/mercato:tagged", "abc"),
        ("staging", "ghcr.io/acme/mercato", "bad tag; rm -rf /"),
        ("staging", "ghcr.io/acme/mercato"),
    ],
)
def test_render_refuses_bad_arguments(args: tuple[str, ...]) -> None:
    done = subprocess.run(
        [str(DEPLOY / "render.sh"), *args],
        capture_output=True,
        text=True,
        timeout=30,
        env={"KUBECTL": _tool("kubectl"), "PATH": "/usr/bin:/bin"},
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert done.stdout == ""


def test_the_schema_validator_rejects_what_kubernetes_would(tmp_path: Path) -> None:
    deployment = one(render("production"), "Deployment")
    broken = yaml.safe_load(yaml.safe_dump(deployment))
    broken["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["paht"] = "/x"
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(broken))
    validate = [_tool("kubernetes-validate"), "--strict", "--quiet", str(path)]
    done = subprocess.run(validate, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode != 0
    assert "paht" in done.stdout + done.stderr


def test_the_dockerfile_builds_in_two_stages_and_runs_mercato_unprivileged() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    stages = re.findall(r"^FROM (\S+) AS (\w+)$", text, flags=re.M)
    assert [name for _, name in stages] == ["build", "runtime"]
    final = text.split("AS runtime", 1)[1]
    assert re.search(r"^USER 10001:10001$", final, flags=re.M)
    assert 'ENTRYPOINT ["mercato"]' in final
    assert 'CMD ["serve"]' in final
    assert re.search(r"^EXPOSE 8000 9100$", final, flags=re.M)
    assert "MERCATO_PORT=8000" in final
    assert "MERCATO_METRICS_PORT=9100" in final
    assert not re.search(r"gcc|build-essential", text), "no build tools are needed"
    # the only package added: PostgreSQL's clients, for mercato db backup and restore
    installs = re.findall(r"apt-get install (.+?) \\$", text, flags=re.M)
    assert installs == ["--yes --no-install-recommends postgresql-client"]
    assert "apt-get install" in final
    assert "COPY --from=build /opt/mercato /opt/mercato" in final
    # everything the build copies is in the build context .dockerignore lets through
    allowed = [
        line[1:].rstrip("/")
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.startswith("!")
    ]
    for source in re.findall(r"^COPY (?!--from)(.+) \S+$", text, flags=re.M):
        for item in source.split():
            assert (ROOT / item).exists(), item
            assert any(item == a or item.startswith(a + "/") for a in allowed), item


def test_the_image_pins_every_runtime_dependency() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pinned = {
        line.split("==")[0].lower()
        for line in (DEPLOY / "constraints.txt").read_text().splitlines()
        if "==" in line and not line.startswith("#")
    }
    for requirement in project["dependencies"]:
        name = re.split(r"[\[<>=~!; ]", requirement, maxsplit=1)[0].lower().replace("_", "-")
        assert name in pinned, f"{name} is not pinned in deploy/constraints.txt"
