"""Flagger's canary in production: the command's rules and count, a schema that is enforced."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

from mercato.cli.rollout.analyze import Plan
from tests.deploy.test_manifests import DEPLOY, one, render

VALIDATOR = DEPLOY / "validate-custom-resources"
CRDS = sorted(str(p) for p in (DEPLOY / "crds").glob("*/crd.yaml"))


def test_the_canary_counts_failed_looks_as_the_command_does_on_every_rule() -> None:
    docs = render("production-flagger")
    canary = one(docs, "Canary", "mercato")
    assert canary["metadata"]["namespace"] == "production"
    analysis = canary["spec"]["analysis"]
    assert analysis["threshold"] == Plan().threshold
    templates = {d["metadata"]["name"]: d for d in docs if d["kind"] == "MetricTemplate"}
    used = {m["templateRef"]["name"] for m in analysis["metrics"]}
    assert used == set(templates)
    assert {name.removeprefix("mercato-") for name in used} == {
        "requests",
        "error-ratio",
        "latency",
        "restarts",
        "orders",
        "payment-success",
    }
    for template in templates.values():
        assert template["metadata"]["namespace"] == "production"
        assert '"{{ target }}-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)"' in template["spec"]["query"]


def test_prometheus_and_the_disruption_budget_still_find_the_primary_pods() -> None:
    docs = render("production-flagger")
    labels = dict(one(docs, "Deployment", "mercato")["spec"]["template"]["metadata"]["labels"])
    # Flagger's primary copies the pods with the name label renamed
    primary = {**labels, "app.kubernetes.io/name": "mercato-primary"}
    for pod in (labels, primary):
        selector = one(docs, "Service", "mercato-metrics")["spec"]["selector"]
        assert selector.items() <= pod.items()
        budget = one(docs, "PodDisruptionBudget")["spec"]["selector"]["matchLabels"]
        assert budget.items() <= pod.items()


def _validate(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(VALIDATOR), *CRDS, "--", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_validator_refuses_unknown_fields_and_wrong_types_and_strips_what_it_checked(
    tmp_path: Path,
) -> None:
    docs = render("production-flagger")
    canary = yaml.safe_load(yaml.safe_dump(one(docs, "Canary")))
    good = tmp_path / "good.yaml"
    good.write_text(yaml.safe_dump_all([canary, one(docs, "Service", "mercato")]))
    done = _validate(good)
    assert done.returncode == 0, done.stdout + done.stderr
    assert [d["kind"] for d in yaml.safe_load_all(good.read_text())] == ["Service"]

    misspelt = yaml.safe_load(yaml.safe_dump(canary))
    misspelt["spec"]["analysis"]["treshold"] = misspelt["spec"]["analysis"].pop("threshold")
    wrong_type = yaml.safe_load(yaml.safe_dump(canary))
    wrong_type["spec"]["analysis"]["metrics"][0]["thresholdRange"]["min"] = "fifty"
    unserved = {**canary, "apiVersion": "flagger.app/v9"}
    for broken, named in ((misspelt, "treshold"), (wrong_type, "fifty"), (unserved, "v9")):
        path = tmp_path / "broken.yaml"
        path.write_text(yaml.safe_dump(broken))
        done = _validate(path)
        assert done.returncode != 0
        assert named in done.stdout + done.stderr
