#!/usr/bin/env bash
# Wait for a Kubernetes Job to succeed; on failure or time-out print its logs and exit 1.
#   deploy/wait-job.sh NAMESPACE JOB [TIMEOUT_SECONDS]
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: $0 NAMESPACE JOB [TIMEOUT_SECONDS]" >&2; exit 2; }
namespace=$1 job=$2 timeout=${3:-900}
kubectl=${KUBECTL:-kubectl}
deadline=$((SECONDS + timeout))
while [ "$SECONDS" -lt "$deadline" ]; do
  succeeded=$("$kubectl" -n "$namespace" get job "$job" -o jsonpath='{.status.succeeded}')
  failed=$("$kubectl" -n "$namespace" get job "$job" -o jsonpath='{.status.conditions[?(@.type=="Failed")].status}')
  if [ "${succeeded:-0}" -ge 1 ]; then
    "$kubectl" -n "$namespace" logs "job/$job" --tail=50 || true
    echo "job $job succeeded"
    exit 0
  fi
  if [ "$failed" = "True" ]; then
    break
  fi
  sleep 5
done
echo "job $job failed or timed out after ${timeout}s; its logs:" >&2
"$kubectl" -n "$namespace" logs "job/$job" --all-containers --tail=200 >&2 || true
exit 1
