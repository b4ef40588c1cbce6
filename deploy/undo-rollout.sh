#!/usr/bin/env bash
# Undo mercato's rollout in NAMESPACE, but only if this pipeline run changed it: when the
# Deployment's revision is still BEFORE (read before the run applied anything), or BEFORE is
# empty (the run failed before it got to apply), there is nothing to undo and undoing would
# roll a healthy release back. DECISION is the release record's (mercato rollout record):
# anything but `undo` (an empty one too: no record) refuses and leaves the rollout to a person;
# without DECISION (staging: no record) the undo goes ahead.
#   deploy/undo-rollout.sh NAMESPACE BEFORE [DECISION]
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: $0 NAMESPACE BEFORE [DECISION]" >&2; exit 2; }
namespace=$1 before=$2 decision=${3-undo}
kubectl=${KUBECTL:-kubectl}
if [ -z "$before" ]; then
  echo "nothing was applied: nothing to undo"
  exit 0
fi
now=$("$kubectl" -n "$namespace" get deployment/mercato \
  -o jsonpath='{.metadata.annotations.deployment\.kubernetes\.io/revision}')
if [ "$now" = "$before" ]; then
  echo "deployment/mercato is still at revision $before: nothing to undo"
  exit 0
fi
if [ "$decision" != undo ]; then
  echo "the release record says '$decision', not undo: not undoing (docs/rollback.md)" >&2
  exit 1
fi
echo "undoing deployment/mercato: revision $now back to $before"
"$kubectl" -n "$namespace" rollout undo deployment/mercato --to-revision="$before"
"$kubectl" -n "$namespace" rollout status deployment/mercato --timeout=20m
