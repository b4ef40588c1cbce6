#!/usr/bin/env bash
# Validate what deploys mercato, offline: every Kustomize overlay and Job renders and passes
# the Kubernetes JSON schemas (custom resources: the vendored CRDs' schemas) (strict: unknown fields are errors) for the oldest supported
# Kubernetes (1.30: the preStop sleep action) and the newest; the Dockerfile passes hadolint;
# the shell scripts pass ShellCheck; the GitHub workflows pass actionlint (which runs
# ShellCheck on their run: steps too). The tools come from the `deploy` extra (pinned in
# pyproject.toml); BIN names the folder they are in (default: .venv/bin).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-.venv/bin}
export PATH="$BIN:$PATH"
export KUBECTL="$BIN/kubectl"
for tool in kubectl kubernetes-validate hadolint shellcheck actionlint; do
  [ -x "$BIN/$tool" ] || { echo "validate: $BIN/$tool is missing: run make install" >&2; exit 1; }
done

rendered=$(mktemp -d)
trap 'rm -rf "$rendered"' EXIT
for overlay in dev staging production production-canary production-flagger; do
  "$KUBECTL" kustomize "deploy/k8s/overlays/$overlay" > "$rendered/$overlay.yaml"
done
for job in migrate backup; do
  deploy/render.sh "$job:production" registry.example/mercato 0.0.0-validate > "$rendered/job-$job.yaml"
done
# Flagger's Canary and MetricTemplates: against the CRD vendored from Flagger (deploy/crds),
# then taken out of the renderings, which hold only built-in kinds from here on
"$BIN/python" deploy/validate-custom-resources deploy/crds/*/crd.yaml -- "$rendered"/*.yaml
for version in 1.30 1.37; do
  kubernetes-validate --strict --quiet -k "$version" "$rendered"/*.yaml
done
count=$(find "$rendered" -name '*.yaml' | wc -l)
echo "kubernetes: $count renderings valid against 1.30 and 1.37 (strict)"

hadolint deploy/Dockerfile
echo "hadolint: deploy/Dockerfile clean"
mapfile -t scripts < <(grep -l '^#!/usr/bin/env bash' deploy/* 2>/dev/null)
shellcheck "${scripts[@]}"
echo "shellcheck: ${scripts[*]} clean"
actionlint
echo "actionlint: .github/workflows clean"
