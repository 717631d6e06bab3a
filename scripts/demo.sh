#!/usr/bin/env bash
# The main job, end to end (`npm run demo`): bring up the local cluster with Knative Eventing, apply deploy/,
# start the provisioner and a `cloudevents listen` sink (in the cloudevents-player's place) on this machine,
# send one io.podgateway.client.pending event for gateway foo to the Broker with curl, and print the result
# event the sink received and the routed pod. Leaves the cluster running (`npm run cluster -- down`).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/node_modules/.bin:$PATH"
[ -x node_modules/.bin/node ] || npm ci --no-audit --no-fund

bash cluster/cluster.sh up
eval "$(bash cluster/cluster.sh env)"
kc() { "$KUBECTL" "$@"; }
mkdir -p .cache
log="$PWD/.cache/demo-service.log"
sinklog="$PWD/.cache/demo-sink.log"

echo "--- applying deploy/ (namespaces, Broker, RBAC, Knative Services, Triggers)"
until [ -z "$(kc get namespace podgateway podgateway-clients --ignore-not-found -o jsonpath='{.items[?(@.status.phase=="Terminating")].metadata.name}')" ]; do sleep 1; done
kc apply --server-side --field-manager=demo -f deploy/namespace.yaml -f deploy/broker.yaml -f deploy/rbac.yaml \
  -f deploy/service.yaml -f deploy/cloudevents-player.yaml >/dev/null

# Knative Serving does not run here: the Knative Services' addresses are set through their status.
address() { # service url
  kc patch services.serving.knative.dev "$1" -n podgateway --subresource=status --type=merge \
    -p "{\"status\":{\"url\":\"$2\",\"address\":{\"url\":\"$2\"},\"conditions\":[{\"type\":\"Ready\",\"status\":\"True\"}]}}" >/dev/null
}

port="${DEMO_PORT:-18080}"
echo "--- starting the provisioner on 127.0.0.1:$port (log: $log) and the sink (log: $sinklog)"
ip netns exec "$PGW_KNATIVE_SINK_NETNS" "$CLOUDEVENTS_CLI" listen -P 8080 >"$sinklog" 2>&1 &
sink=$!
HOST=127.0.0.1 PORT="$port" CLIENT_NAMESPACE=podgateway-clients node src/main/node.ts >"$log" 2>&1 &
service=$!
trap 'kill "$service" "$sink" 2>/dev/null; wait "$service" "$sink" 2>/dev/null || true' EXIT
for _ in $(seq 100); do
  curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && curl -fsS "$PGW_KNATIVE_SINK_URL/history" >/dev/null 2>&1 && break
  sleep 0.1
done
address podgateway-provisioner "http://127.0.0.1:$port"
address cloudevents-player "$PGW_KNATIVE_SINK_URL"
kc wait -n podgateway --for=condition=Ready --timeout=60s broker/default trigger/podgateway-provisioner trigger/cloudevents-player >/dev/null

send() { # id type data
  curl -sS -o /dev/null -w '%{http_code}' "$PGW_KNATIVE_INGRESS_URL/podgateway/default" \
    -H "ce-specversion: 1.0" -H "ce-id: $1" -H "ce-source: /demo/curl" -H "ce-type: $2" -H "content-type: application/json" -d "$3"
}
# A Trigger turns Ready a moment before the channel dispatcher knows its subscribers (an event in between is
# accepted and dropped): probe until the sink, subscribed without a filter, receives one.
for i in $(seq 60); do
  send "demo-probe-$i" io.podgateway.demo.probe '{}' >/dev/null
  sleep 0.5
  grep -q "id: demo-probe-" "$sinklog" && break
done

id="demo-$(date +%s)"
echo "--- curl to the Broker: io.podgateway.client.pending {\"gateway_name\":\"foo\"} (ce-id $id)"
curl -sS -i "$PGW_KNATIVE_INGRESS_URL/podgateway/default" \
  -H "ce-specversion: 1.0" -H "ce-id: $id" -H "ce-source: /demo/curl" \
  -H "ce-type: io.podgateway.client.pending" -H "content-type: application/json" \
  -d '{"gateway_name":"foo"}'
echo

echo "--- what the sink (cloudevents listen, subscribed like the cloudevents-player) received"
for _ in $(seq 150); do
  grep -qi "causationid: $id" "$sinklog" && break
  sleep 0.2
done
# the sink prints every event on the broker as YAML: show the ones of this request
awk -v id="$id" 'BEGIN{RS="---\n"} index($0, id) && !/probe/ {printf "%s---\n", $0}' "$sinklog"
pod=$(awk -v id="causationid: $id" '/^---/{s=""} /subject:/{s=$2} index(tolower($0),id){print s; exit}' "$sinklog")
[ -n "$pod" ] || { echo "no result event at the sink: see $log"; exit 1; }

echo "--- the client pod, as the API server has it"
for _ in $(seq 100); do
  phase=$(kc get pod -n podgateway-clients "$pod" -o jsonpath='{.status.phase}')
  [ "$phase" = Running ] && break
  sleep 0.2
done
kc get pod -n podgateway-clients "$pod" -o wide
echo "init containers: $(kc get pod -n podgateway-clients "$pod" -o jsonpath='{.spec.initContainers[*].name}')"
echo "containers:      $(kc get pod -n podgateway-clients "$pod" -o jsonpath='{.spec.containers[*].name}')"
echo "gateway-init:    $(kc get pod -n podgateway-clients "$pod" -o jsonpath='{.spec.initContainers[?(@.name=="gateway-init")].env}')"
echo "--- service log"
cat "$log"
