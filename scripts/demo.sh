#!/usr/bin/env bash
# The main job, end to end (`npm run demo`): bring up the local cluster with Knative Eventing, apply deploy/,
# start the provisioner and a `cloudevents listen` sink (in the cloudevents-player's place) on this machine,
# send one io.podgateway.client.pending event for gateway foo to the Broker with curl (a token for the Broker's
# audience: Eventing's OIDC is on, deploy/ turns sender authentication on), and print the result
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

echo "--- applying deploy/ (kubectl apply -k cluster/deploy: namespaces, Broker, RBAC, Knative Services, Triggers, ...)"
until [ -z "$(kc get namespace podgateway podgateway-clients --ignore-not-found -o jsonpath='{.items[?(@.status.phase=="Terminating")].metadata.name}')" ]; do sleep 1; done
fresh=$(kc get namespace podgateway --ignore-not-found -o name)
kc apply --server-side --force-conflicts --field-manager=demo -k cluster/deploy >/dev/null
# The broker filter and dispatcher cache the OIDC tokens they mint per ServiceAccount name for an hour: after
# the namespace was deleted (e.g. by the tests), the same names' old tokens are refused. Start them afresh.
if [ -z "$fresh" ]; then
  for c in kn-filter kn-dispatcher; do bash cluster/cluster.sh stop "$c" && bash cluster/cluster.sh start "$c"; done
fi

# The provisioner runs as deploy/service.yaml configures it (sender authentication on: the Trigger's audience
# and identity), as its ServiceAccount; the template is the file the mounted ConfigMap is generated from.
shipped_env() {
  node -e 'const y = require("yaml"); const s = y.parseAllDocuments(require("fs").readFileSync("deploy/service.yaml", "utf8"))
    .map((d) => d.toJS()).find((o) => o?.kind === "Service");
    for (const e of s.spec.template.spec.containers[0].env) if (e.value !== undefined) console.log(`${e.name}=${e.value}`)'
}
mapfile -t envs < <(shipped_env)
envs+=("CLIENT_POD_TEMPLATE=$PWD/deploy/client-pod-template.yaml")
audience=$(printf '%s\n' "${envs[@]}" | sed -n 's/^OIDC_AUDIENCE=//p')
sakube="$PWD/.cache/demo-provisioner.kubeconfig"
kc config view --raw --minify >"$sakube"
chmod 600 "$sakube"
KUBECONFIG=$sakube kc config set-credentials podgateway-provisioner \
  --token="$(kc create token podgateway-provisioner -n podgateway --duration=3600s)" >/dev/null
KUBECONFIG=$sakube kc config set-context --current --user=podgateway-provisioner >/dev/null

# Knative Serving does not run here: the Knative Services' addresses are set through their status.
address() { # service url [audience]
  kc patch services.serving.knative.dev "$1" -n podgateway --subresource=status --type=merge \
    -p "{\"status\":{\"url\":\"$2\",\"address\":{\"url\":\"$2\"${3:+,\"audience\":\"$3\"}},\"conditions\":[{\"type\":\"Ready\",\"status\":\"True\"}]}}" >/dev/null
}

port="${DEMO_PORT:-18080}"
echo "--- starting the provisioner on 127.0.0.1:$port (log: $log) and the sink (log: $sinklog)"
ip netns exec "$PGW_KNATIVE_SINK_NETNS" "$CLOUDEVENTS_CLI" listen -P 8080 >"$sinklog" 2>&1 &
sink=$!
env "${envs[@]}" KUBECONFIG="$sakube" HOST=127.0.0.1 PORT="$port" node src/main/node.ts >"$log" 2>&1 &
service=$!
trap 'kill "$service" "$sink" 2>/dev/null; wait "$service" "$sink" 2>/dev/null || true; rm -f "$sakube"' EXIT
for _ in $(seq 100); do
  curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && curl -fsS "$PGW_KNATIVE_SINK_URL/history" >/dev/null 2>&1 && break
  sleep 0.1
done
address podgateway-provisioner "http://127.0.0.1:$port" "$audience"
address cloudevents-player "$PGW_KNATIVE_SINK_URL"
kc wait -n podgateway --for=condition=Ready --timeout=60s broker/default trigger/podgateway-provisioner trigger/cloudevents-player >/dev/null

# With Eventing's OIDC on, the Broker's ingress wants a token for its audience from a sender in its namespace.
kc create serviceaccount demo-sender -n podgateway --dry-run=client -o yaml | kc apply --server-side --field-manager=demo -f - >/dev/null
token=$(kc create token demo-sender -n podgateway --audience "$(kc get broker default -n podgateway -o jsonpath='{.status.address.audience}')")
send() { # id type data
  curl -sS -o /dev/null -w '%{http_code}' "$PGW_KNATIVE_INGRESS_URL/podgateway/default" -H "authorization: Bearer $token" \
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
echo "--- curl to the Broker: io.podgateway.client.pending {\"gateway_name\":\"foo\"} (ce-id $id, token for the Broker's audience)"
curl -sS -i "$PGW_KNATIVE_INGRESS_URL/podgateway/default" -H 'authorization: Bearer '"$token" \
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
