#!/usr/bin/env bash
# Watch the production canary for DURATION seconds (default 600); exit 1 at the first sign
# of trouble, so the pipeline rolls it back:
#   - the canary pod is not ready, or has restarted;
#   - with PROMETHEUS_URL set: its 5xx ratio over 2 minutes passes MAX_ERROR_RATIO (default
#     0.01), or its p95 latency passes MAX_P95_SECONDS (default 0.5), using the request
#     metrics mercato exports (http_requests_total, http_request_duration_seconds).
#   deploy/canary-check.sh NAMESPACE [DURATION_SECONDS]
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: $0 NAMESPACE [DURATION_SECONDS]" >&2; exit 2; }
namespace=$1 duration=${2:-600}
kubectl=${KUBECTL:-kubectl}
max_errors=${MAX_ERROR_RATIO:-0.01} max_p95=${MAX_P95_SECONDS:-0.5}
selector="app.kubernetes.io/name=mercato,track=canary"
pods="namespace=\"$namespace\",pod=~\"mercato-canary-.*\""

query() {  # a PromQL query's single value, or empty when there is no data
  curl -fsS --max-time 10 "$PROMETHEUS_URL/api/v1/query" --data-urlencode "query=$1" |
    jq -r '.data.result[0].value[1] // empty'
}

above() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a > b) }'; }

deadline=$((SECONDS + duration))
while [ "$SECONDS" -lt "$deadline" ]; do
  ready=$("$kubectl" -n "$namespace" get pods -l "$selector" \
    -o jsonpath='{range .items[*]}{.status.containerStatuses[0].ready}{" "}{end}')
  restarts=$("$kubectl" -n "$namespace" get pods -l "$selector" \
    -o jsonpath='{range .items[*]}{.status.containerStatuses[0].restartCount}{" "}{end}')
  if [ -z "$ready" ] || [[ $ready == *false* ]]; then
    echo "canary not ready: $ready" >&2; exit 1
  fi
  for count in $restarts; do
    if [ "$count" -gt 0 ]; then echo "canary restarted $count times" >&2; exit 1; fi
  done
  if [ -n "${PROMETHEUS_URL:-}" ]; then
    errors=$(query "sum(rate(http_requests_total{$pods,status=~\"5..\"}[2m])) / sum(rate(http_requests_total{$pods}[2m]))")
    p95=$(query "histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket{$pods}[2m])))")
    echo "canary: 5xx ratio ${errors:-n/a}, p95 ${p95:-n/a} s"
    if [ -n "$errors" ] && above "$errors" "$max_errors"; then
      echo "canary 5xx ratio $errors above $max_errors" >&2; exit 1
    fi
    if [ -n "$p95" ] && [ "$p95" != "NaN" ] && above "$p95" "$max_p95"; then
      echo "canary p95 ${p95}s above ${max_p95}s" >&2; exit 1
    fi
  else
    echo "canary ready, no restarts (PROMETHEUS_URL unset: no metric analysis)"
  fi
  sleep 30
done
echo "canary healthy for ${duration}s"
