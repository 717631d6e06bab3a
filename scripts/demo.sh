#!/usr/bin/env bash
# The main job, end to end (`npm run demo`): bring up the local cluster (Knative Eventing, the real node with
# gateways foo and bar, the echo host), build our image into the local registry, apply deploy/ (cluster/deploy),
# where Knative Serving runs the provisioner's Knative Service as pods of that image and the CloudEvents Player (built by
# cluster/player.sh), send one io.podgateway.client.pending event for gateway foo to the Broker with curl, and print
# the result event as the player received it, the client pod running on the real node, what the echo host saw of the
# client's request: foo's gateway pod's address, and how to open the player's page. Leaves the cluster running
# (`npm run cluster -- down`).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/node_modules/.bin:$PATH"
[ -x node_modules/.bin/node ] || npm ci --no-audit --no-fund

bash cluster/cluster.sh up
eval "$(bash cluster/cluster.sh env)"
kc() { "$KUBECTL" "$@"; }

echo "--- building our image (FROM scratch, one executable) into the local registry"
bash scripts/publish-local.sh >/dev/null

echo "--- applying deploy/ (kubectl apply -k cluster/deploy: namespaces, Broker, RBAC, Knative Services, Triggers, controller, ...)"
until [ -z "$(kc get namespace podgateway podgateway-clients --ignore-not-found -o jsonpath='{.items[?(@.status.phase=="Terminating")].metadata.name}')" ]; do sleep 1; done
fresh=$(kc get namespace podgateway --ignore-not-found -o name)
kc apply --server-side --force-conflicts --field-manager=demo -k cluster/deploy >/dev/null
# the pod-gateway chart copies each gateway's settings ConfigMap into the namespaces it routes
for gw in foo bar; do
  node cluster/pod-gateway-chart.ts --release $gw --namespace gateways -f deploy/pod-gateway-$gw-values.yaml \
    -f cluster/pod-gateway-local-values.yaml --configmap-in podgateway-clients
done | kc apply --server-side --field-manager=demo -f - >/dev/null
# The broker filter and dispatcher cache the OIDC tokens they mint per ServiceAccount name for an hour: after
# the namespace was deleted (e.g. by the tests), the same names' old tokens are refused. Start them afresh.
if [ -z "$fresh" ]; then
  for c in kn-filter kn-dispatcher; do bash cluster/cluster.sh stop "$c" && bash cluster/cluster.sh start "$c"; done
fi

echo "--- the provisioner and the CloudEvents Player: Knative Services on Knative Serving, their pods on the real node"
kc wait -n podgateway --for=condition=Ready --timeout=300s services.serving.knative.dev/podgateway-provisioner \
  services.serving.knative.dev/cloudevents-player >/dev/null
kc get services.serving.knative.dev -n podgateway
# the player's page and API, at its Knative Service's URL through Kourier: under Serving's default domain
# (svc.cluster.local) a cluster-local URL, served by Kourier's internal gateway (the name resolved to its Service)
player_url=$(kc get services.serving.knative.dev cloudevents-player -n podgateway -o jsonpath='{.status.url}')
kourier=$(kc get service kourier-internal -n kourier-system -o jsonpath='{.spec.clusterIP}')
player_events() { curl -fsS -H "host: ${player_url#http://}" "http://$kourier/messages?page=0&size=200"; }
kc rollout status -n podgateway deployment/podgateway-provisioner-controller --timeout=180s >/dev/null
kc wait -n podgateway --for=condition=Ready --timeout=60s broker/default trigger/podgateway-provisioner trigger/cloudevents-player >/dev/null
kc get pods -n podgateway -o wide

# With Eventing's OIDC on, the Broker's ingress wants a token for its audience from a sender in its namespace.
kc create serviceaccount demo-sender -n podgateway --dry-run=client -o yaml | kc apply --server-side --field-manager=demo -f - >/dev/null
token=$(kc create token demo-sender -n podgateway --audience "$(kc get broker default -n podgateway -o jsonpath='{.status.address.audience}')")
send() { # id type data
  curl -sS -o /dev/null -w '%{http_code}' "$PGW_KNATIVE_INGRESS_URL/podgateway/default" -H "authorization: Bearer $token" \
    -H "ce-specversion: 1.0" -H "ce-id: $1" -H "ce-source: /demo/curl" -H "ce-type: $2" -H "content-type: application/json" -d "$3"
}
# A Trigger turns Ready a moment before the channel dispatcher knows its subscribers (an event in between is
# accepted and dropped): probe until the player, subscribed without a filter, receives one.
for i in $(seq 60); do
  send "demo-probe-$i" io.podgateway.demo.probe '{}' >/dev/null
  sleep 0.5
  player_events 2>/dev/null | grep -q '"id":"demo-probe-' && break
done

id="demo-$(date +%s)"
echo "--- curl to the Broker: io.podgateway.client.pending {\"gateway_name\":\"foo\"} (ce-id $id, token for the Broker's audience)"
curl -sS -i "$PGW_KNATIVE_INGRESS_URL/podgateway/default" -H 'authorization: Bearer '"$token" \
  -H "ce-specversion: 1.0" -H "ce-id: $id" -H "ce-source: /demo/curl" \
  -H "ce-type: io.podgateway.client.pending" -H "content-type: application/json" \
  -d '{"gateway_name":"foo"}'
echo

echo "--- the result event, as the CloudEvents Player received it (its GET /messages)"
# the player lists every event on the broker: the one whose causationid is this request's
result() { player_events | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const m=JSON.parse(s).find(m=>m.type==="RECEIVED"&&m.extensions?.causationid===process.argv[1]);if(m)console.log(JSON.stringify(m,null,1))})' "$id"; }
for _ in $(seq 300); do
  event=$(result 2>/dev/null || true)
  [ -n "$event" ] && break
  sleep 0.2
done
echo "$event"
pod=$(printf '%s' "$event" | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(s?JSON.parse(s).subject??"":""))')
[ -n "$pod" ] || { echo "no result event at the player: see kubectl logs -n podgateway -l serving.knative.dev/service=podgateway-provisioner -c provisioner"; exit 1; }

echo "--- the client pod, running on the real node"
kc wait -n podgateway-clients --for=condition=Ready --timeout=180s pod/"$pod" >/dev/null
kc get pod -n podgateway-clients "$pod" -o wide
echo "--- gateway-init: the tunnel to foo's gateway and its DHCP lease"
kc logs -n podgateway-clients "$pod" -c gateway-init | grep -E "lease of|Gateway ready" || true

echo "--- the client's request to the echo host ($PGW_ECHO_URL, outside the cluster), from inside the client"
seen=$(kc exec -n podgateway-clients "$pod" -c client -- curl -sS --max-time 5 "$PGW_ECHO_URL/hello-from/$pod")
gw=$(kc get pods -n gateways -l app.kubernetes.io/instance=foo -o jsonpath='{.items[0].metadata.name} {.items[0].status.podIP}')
client_ip=$(kc get pod -n podgateway-clients "$pod" -o jsonpath='{.status.podIP}')
echo "echo host saw: $seen"
remote=$(printf '%s' "$seen" | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).remote_address))')
if [ "$remote" = "${gw#* }" ]; then
  echo "=> the client's traffic left through gateway foo: it arrived from ${gw#* } (pod ${gw% *}), not from the client's own $client_ip"
else
  echo "=> NOT ROUTED: the request arrived from $remote; gateway foo is ${gw#* }, the client $client_ip"
  exit 1
fi
echo "--- pod traffic to non-local addresses dropped by the node (must be 0): $(iptables -t mangle -L "$PGW_EGRESS_CHAIN" -v -x -n | awk '/DROP/ {print $1}')"
echo
echo "--- the CloudEvents Player's page: $player_url (send io.podgateway.client.pending {\"gateway_name\":\"foo\"} there)"
echo "    its name goes to Kourier ($kourier), e.g. chromium --host-resolver-rules='MAP ${player_url#http://} $kourier' $player_url"

echo "--- the clients page (README: The clients page): the service is cluster-local; while its revision runs, forward a port"
rev=$(kc get services.serving.knative.dev -n podgateway podgateway-provisioner -o jsonpath='{.status.latestReadyRevisionName}')
echo "  $KUBECTL -n podgateway port-forward deployment/$rev-deployment 8080:8080"
echo "  then open http://127.0.0.1:8080/ui/clients?gateway=foo with a token of an identity in ALLOWED_SENDERS (audience podgateway-provisioner)"
