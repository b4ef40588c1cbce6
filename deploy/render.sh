#!/usr/bin/env bash
# Render mercato's manifests for one environment and image, for `kubectl apply -f -`.
#
#   deploy/render.sh dev|staging|production|production-canary|production-flagger IMAGE TAG
#   deploy/render.sh migrate:ENV IMAGE TAG     the migration Job (regular, expand migrations
#                                              only), named mercato-migrate-TAG
#   deploy/render.sh contract:ENV IMAGE TAG    the post-deploy (contract) migrations, run once
#                                              the release is promoted: mercato-migrate-post-TAG
#   deploy/render.sh backup:ENV IMAGE TAG      the backup Job, named mercato-backup-TAG
#
# The overlays stay as committed; the image is set in a throw-away kustomization that uses
# them, so the pipeline and a person render exactly the same thing. KUBECTL names the kubectl
# to use (its built-in kustomize renders).
set -euo pipefail

usage() { echo "usage: $0 dev|staging|production|production-canary|production-flagger|migrate:ENV|contract:ENV|backup:ENV IMAGE TAG" >&2; exit 2; }
[ $# -eq 3 ] || usage
target=$1 image=$2 tag=$3
[[ $image =~ ^[a-z0-9]([a-z0-9._/-]*[a-z0-9])?(:[0-9]+)?(/[a-z0-9._/-]+)?$ ]] || { echo "bad image name (no tag): $image" >&2; exit 2; }
[[ $tag =~ ^[A-Za-z0-9_][A-Za-z0-9_.-]{0,40}$ ]] || { echo "bad image tag: $tag" >&2; exit 2; }

here=$(cd "$(dirname "$0")" && pwd)
extra=""
case $target in
  dev | staging | production | production-canary | production-flagger)
    resource="../overlays/$target" ;;
  migrate:dev | migrate:staging | migrate:production | backup:dev | backup:staging | backup:production | \
  contract:dev | contract:staging | contract:production)
    job=${target%%:*} env=${target#*:}
    suffix=$(echo "$tag" | tr '[:upper:]_.' '[:lower:]--')
    # the contract step is the migration Job without --pre-deploy: everything up to head
    args=""
    if [ "$job" = contract ]; then
      job=migrate suffix="post-$suffix" args='["db", "upgrade"]'
    fi
    resource="../jobs/$job"
    # the first variable of the Job: MERCATO_ENV (migrate) or BACKUP_LABEL (backup)
    if [ "$job" = migrate ]; then value=$env; else value=$tag; fi
    extra="namespace: $env
nameSuffix: -$suffix
patches:
  - target:
      kind: Job
    patch: |-
      - op: replace
        path: /spec/template/spec/containers/0/env/0/value
        value: \"$value\""
    # the migration's second variable, MERCATO_PAYMENT_PROVIDER: the environment's provider
    # (the production profile refuses to start, even to migrate, with the sandbox)
    if [ "$job" = migrate ]; then
      provider=sandbox
      [ "$env" = production ] && provider=stripe
      extra="$extra
      - op: replace
        path: /spec/template/spec/containers/0/env/1/value
        value: \"$provider\""
    fi
    if [ -n "$args" ]; then
      extra="$extra
      - op: replace
        path: /spec/template/spec/containers/0/args
        value: $args"
    fi ;;
  *) usage ;;
esac

work=$(mktemp -d "$here/k8s/.render-XXXXXX")
trap 'rm -rf "$work"' EXIT
cat > "$work/kustomization.yaml" <<YAML
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - $resource
images:  # the name in the manifests, and the registry name the overlays already gave it
  - name: mercato
    newName: $image
    newTag: "$tag"
  - name: ghcr.io/mercato-shop/mercato
    newName: $image
    newTag: "$tag"
$extra
YAML
"${KUBECTL:-kubectl}" kustomize "$work"
