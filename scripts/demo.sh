#!/usr/bin/env bash
# The main job, end to end (`npm run demo`): bring up the local cluster, start the provisioner against it,
# send one io.podgateway.client.pending event for gateway foo with curl, print the result event and the
# routed pod. Leaves the cluster running (stop it with `npm run cluster -- down`).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/node_modules/.bin:$PATH"
[ -x node_modules/.bin/node ] || npm ci --no-audit --no-fund

bash cluster/cluster.sh up
eval "$(bash cluster/cluster.sh env)"

port="${DEMO_PORT:-18080}"
log="$PWD/.cache/demo-service.log"
mkdir -p .cache
echo "--- starting the provisioner on 127.0.0.1:$port (log: $log)"
HOST=127.0.0.1 PORT="$port" node src/main/node.ts >"$log" 2>&1 &
service=$!
trap 'kill "$service" 2>/dev/null; wait "$service" 2>/dev/null || true' EXIT
for _ in $(seq 100); do
  curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break
  sleep 0.1
done

id="demo-$(date +%s)"
echo "--- sending io.podgateway.client.pending {\"gateway_name\":\"foo\"} (ce-id $id)"
curl -sS -i "http://127.0.0.1:$port/" \
  -H "ce-specversion: 1.0" -H "ce-id: $id" -H "ce-source: /demo/curl" \
  -H "ce-type: io.podgateway.client.pending" -H "content-type: application/json" \
  -d '{"gateway_name":"foo"}' | tee .cache/demo-reply.txt
echo

pod=$(sed -n 's/.*"pod_name":"\([^"]*\)".*/\1/p' .cache/demo-reply.txt)
[ -n "$pod" ] || { echo "no done event: see $log"; exit 1; }
echo "--- the client pod, as the API server has it"
for _ in $(seq 100); do
  phase=$("$KUBECTL" get pod "$pod" -o jsonpath='{.status.phase}')
  [ "$phase" = Running ] && break
  sleep 0.2
done
"$KUBECTL" get pod "$pod" -o wide
echo "init containers: $("$KUBECTL" get pod "$pod" -o jsonpath='{.spec.initContainers[*].name}')"
echo "containers:      $("$KUBECTL" get pod "$pod" -o jsonpath='{.spec.containers[*].name}')"
echo "gateway-init:    $("$KUBECTL" get pod "$pod" -o jsonpath='{.spec.initContainers[?(@.name=="gateway-init")].env}')"
echo "--- service log"
cat "$log"
