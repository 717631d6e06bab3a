# Knative Eventing on the local cluster, sourced by cluster.sh (uses its log/die/kc/go_build/...).
# Built from ../shared/vendor/knative-eventing; see cluster/README.md "Knative Eventing".
KNATIVE_SRC=${PGW_KNATIVE_SRC:-${PGW_VENDOR_DIR:-$ROOT/../shared/vendor}/knative-eventing}
KNATIVE_CMDS=(controller broker/ingress broker/filter in_memory/channel_controller in_memory/channel_dispatcher
	mtchannel_broker webhook jobsink)
KNATIVE_BIN_DIR=""

knative_bin_dir() {
	KNATIVE_BIN_DIR=$BIN_ROOT/knative-eventing-$(vendored_module_key "$KNATIVE_SRC" "${KNATIVE_CMDS[@]}")
}

# go build in place (the vendor tree is read-only; -o writes elsewhere); binaries are named after
# the last path element, so broker/ingress -> ingress, in_memory/channel_dispatcher -> channel_dispatcher.
knative_build() {
	[ -f "$KNATIVE_SRC/go.mod" ] || die "Knative Eventing sources not found in $KNATIVE_SRC"
	GOFLAGS=-mod=vendor go_build "$KNATIVE_BIN_DIR" "$KNATIVE_SRC" "-s -w" "${KNATIVE_CMDS[@]/#/./cmd/}"
}

# ---------------------------------------------------------------- processes
# Controllers and the webhook each serve a health probe on :8080 (all interfaces, not configurable),
# so each runs in its own network namespace (loopback only) with the API server port forwarded in.
# The data plane runs on the host: the dispatcher hard-codes 8080/8443, ingress and filter take ports
# from env; they reach cluster-local names through knative-net's HTTP proxy.
KNATIVE_COMPONENTS=(kn-net kn-webhook kn-controller kn-mt-broker-controller kn-imc-controller kn-ingress kn-filter kn-dispatcher)
KN_BASE=${PGW_KNATIVE_PORT_BASE:-18180}
KN_PROXY_PORT=$KN_BASE
KN_INGRESS_PORT=$((KN_BASE + 1)) KN_INGRESS_HTTPS_PORT=$((KN_BASE + 2))
KN_FILTER_PORT=$((KN_BASE + 3)) KN_FILTER_HTTPS_PORT=$((KN_BASE + 4))
KN_WEBHOOK_PORT=$((KN_BASE + 5)) KN_IMC_WEBHOOK_PORT=$((KN_BASE + 6)) KN_SINK_PORT=$((KN_BASE + 7))
KN_DISPATCHER_PORT=8080 # hard-coded in the dispatcher
KN_NS=knative-eventing
# Network namespaces are machine-wide: their names carry this cluster's state dir, so that `down` of one
# cluster (another checkout, another PGW_STATE_DIR) never stops the processes of another.
KN_NETNS_PREFIX=pgw-kn-$(printf '%s' "$STATE" | sha256sum | cut -c1-6)-
KN_NETNS_COMPONENTS=(kn-webhook kn-controller kn-mt-broker-controller kn-imc-controller)
KNET_BIN_DIR=""

# PGW_KNATIVE=0 turns it off; so do missing sources (with a warning from knative_build_all's caller)
knative_enabled() { [ "${PGW_KNATIVE:-1}" != 0 ] && [ -f "$KNATIVE_SRC/go.mod" ]; }
knative_warn_missing() {
	[ "${PGW_KNATIVE:-1}" != 0 ] && [ ! -f "$KNATIVE_SRC/go.mod" ] &&
		log "warning: no Knative Eventing sources in $KNATIVE_SRC (set PGW_KNATIVE_SRC): Knative left out"
	return 0
}

knative_bin_dirs() {
	knative_bin_dir
	KNET_BIN_DIR=$BIN_ROOT/knative-net-$(build_key "$CLUSTER_SRC/knative-net" "-s -w")
}

knative_build_all() {
	go_build "$KNET_BIN_DIR" "$CLUSTER_SRC/knative-net" "-s -w" .
	knative_build
}

knative_bin_of() {
	case $1 in
	kn-net) echo "$KNET_BIN_DIR/knative-net" ;;
	kn-webhook) echo "$KNATIVE_BIN_DIR/webhook" ;;
	kn-controller) echo "$KNATIVE_BIN_DIR/controller" ;;
	kn-mt-broker-controller) echo "$KNATIVE_BIN_DIR/mtchannel_broker" ;;
	kn-imc-controller) echo "$KNATIVE_BIN_DIR/channel_controller" ;;
	kn-ingress) echo "$KNATIVE_BIN_DIR/ingress" ;;
	kn-filter) echo "$KNATIVE_BIN_DIR/filter" ;;
	kn-dispatcher) echo "$KNATIVE_BIN_DIR/channel_dispatcher" ;;
	*) die "unknown component '$1'" ;;
	esac
}

knative_args_of() {
	[ "$1" = kn-net ] || return 0
	local c svc=svc.cluster.local
	printf '%s\n' -proxy="$HOST:$KN_PROXY_PORT" \
		-route="broker-ingress.$KN_NS.$svc=$HOST:$KN_INGRESS_PORT" \
		-route="broker-filter.$KN_NS.$svc=$HOST:$KN_FILTER_PORT" \
		-route="imc-dispatcher.$KN_NS.$svc=$HOST:$KN_DISPATCHER_PORT" \
		-route="*-kn-channel.*.$svc=$HOST:$KN_DISPATCHER_PORT" \
		-route="kubernetes.default.$svc=$HOST:$APISERVER_PORT" \
		-route="kubernetes.default.svc=$HOST:$APISERVER_PORT" \
		-route="*.svc.cluster.local=dns" -cluster-dns="$CLUSTER_DNS_IP:53" \
		-out="$HOST:$KN_WEBHOOK_PORT=${KN_NETNS_PREFIX}webhook:127.0.0.1:8443" \
		-out="$HOST:$KN_IMC_WEBHOOK_PORT=${KN_NETNS_PREFIX}imc-controller:127.0.0.1:8443" \
		-out="$HOST:$KN_SINK_PORT=${KN_NETNS_PREFIX}sink:127.0.0.1:8080"
	for c in "${KN_NETNS_COMPONENTS[@]}"; do
		printf '%s\n' -in="$KN_NETNS_PREFIX${c#kn-}:127.0.0.1:$APISERVER_PORT=$HOST:$APISERVER_PORT"
	done
}

# the ServiceAccount each component runs as (Eventing's own RBAC applies)
knative_sa_of() {
	case $1 in
	kn-webhook) echo eventing-webhook ;;
	kn-controller | kn-mt-broker-controller) echo eventing-controller ;;
	kn-imc-controller) echo imc-controller ;;
	kn-ingress) echo mt-broker-ingress ;;
	kn-filter) echo mt-broker-filter ;;
	kn-dispatcher) echo imc-dispatcher ;;
	esac
}

# printed one word a line: what launch_component puts before the binary (netns, environment)
knative_launcher() {
	local c=$1
	[ "$c" = kn-net ] && return 0
	case " ${KN_NETNS_COMPONENTS[*]} " in *" $c "*) printf '%s\n' ip netns exec "$KN_NETNS_PREFIX${c#kn-}" ;; esac
	printf '%s\n' env -i "PATH=/usr/bin:/bin" "KUBECONFIG=$KCFG_DIR/$c.kubeconfig" \
		SYSTEM_NAMESPACE=$KN_NS POD_NAME="$c" CONTAINER_NAME="${c#kn-}" \
		CONFIG_LOGGING_NAME=config-logging CONFIG_OBSERVABILITY_NAME=config-observability \
		METRICS_DOMAIN=knative.dev/eventing
	case $c in
	kn-webhook) printf '%s\n' WEBHOOK_NAME=eventing-webhook WEBHOOK_PORT=8443 SINK_BINDING_SELECTION_MODE=exclusion ;;
	kn-controller) printf '%s\n' APISERVER_RA_IMAGE=none AUTH_PROXY_IMAGE=none ;;
	kn-imc-controller) printf '%s\n' WEBHOOK_NAME=inmemorychannel-webhook WEBHOOK_PORT=8443 DISPATCHER_IMAGE=none ;;
	kn-ingress | kn-filter | kn-dispatcher)
		# the data plane reaches cluster-local names (and https://kubernetes.default.svc for OIDC) via the proxy; the
		# API server's own address (its OIDC jwks_uri names the advertised one, the node's) directly
		printf '%s\n' "HTTP_PROXY=http://$HOST:$KN_PROXY_PORT" "HTTPS_PROXY=http://$HOST:$KN_PROXY_PORT" "NO_PROXY=127.0.0.1,localhost,$NODE_IP"
		;;
	esac
	case $c in
	kn-ingress) printf '%s\n' NAMESPACE=$KN_NS INGRESS_PORT="$KN_INGRESS_PORT" INGRESS_PORT_HTTPS="$KN_INGRESS_HTTPS_PORT" ;;
	kn-filter) printf '%s\n' NAMESPACE=$KN_NS FILTER_PORT="$KN_FILTER_PORT" FILTER_PORT_HTTPS="$KN_FILTER_HTTPS_PORT" ;;
	# no NAMESPACE: with it the dispatcher only serves channels of that namespace
	kn-dispatcher) printf '%s\n' MAX_IDLE_CONNS=1000 MAX_IDLE_CONNS_PER_HOST=1000 ;;
	esac
}

# the data plane answers its health path only to a kubelet's User-Agent
knative_healthy() {
	local c=$1
	case $c in
	kn-net) curl -fsS --max-time 2 "http://$HOST:$KN_PROXY_PORT/healthz" >/dev/null 2>&1 ;;
	kn-ingress) curl -fsS --max-time 2 -A kube-probe/1 "http://$HOST:$KN_INGRESS_PORT/healthz" >/dev/null 2>&1 ;;
	kn-filter) curl -fsS --max-time 2 -A kube-probe/1 "http://$HOST:$KN_FILTER_PORT/healthz" >/dev/null 2>&1 ;;
	kn-dispatcher) curl -fsS --max-time 2 -A kube-probe/1 "http://$HOST:$KN_DISPATCHER_PORT/healthz" >/dev/null 2>&1 ;;
	*) ip netns exec "$KN_NETNS_PREFIX${c#kn-}" curl -fsS --max-time 2 "http://127.0.0.1:8080/readiness" >/dev/null 2>&1 ;;
	esac
}

# ---------------------------------------------------------------- objects
# Eventing's own files from config/, as kubectl -f arguments
knative_manifest_args() {
	local cfg=$KNATIVE_SRC/config f
	for f in "$cfg"/core/*.yaml "$cfg"/core/resources/*.yaml "$cfg"/core/roles/*.yaml "$cfg"/core/configmaps/*.yaml \
		"$cfg"/channels/in-memory-channel/*.yaml "$cfg"/channels/in-memory-channel/resources/*.yaml \
		"$cfg"/channels/in-memory-channel/roles/*.yaml "$cfg"/channels/in-memory-channel/configmaps/*.yaml \
		"$cfg"/brokers/mt-channel-broker/roles/*.yaml \
		"$cfg"/brokers/mt-channel-broker/deployments/broker-{ingress,filter}.yaml \
		"$cfg"/channels/in-memory-channel/deployments/dispatcher{,-service}.yaml; do
		# Deployments and Services of the data plane are applied so that kwok reports ready endpoints and an
		# Available dispatcher (the reconcilers wait for them); the real processes serve on the host.
		printf '%s\n' -f "$(vendored_file "$f")"
	done
}

# what config/ needs changed here, as one stream
knative_local_manifests() {
	local cfg=$KNATIVE_SRC/config ns="      namespace: $KN_NS" f s
	# the webhooks: the API server reaches them through knative-net's forwards (ExternalName 127.0.0.1)
	for f in "$cfg"/core/webhooks/*.yaml; do
		echo "---"
		sed "s|^$ns\$|&\n      port: $KN_WEBHOOK_PORT|" "$f"
	done
	for f in "$cfg"/channels/in-memory-channel/webhooks/*.yaml; do
		echo "---"
		sed "s|^$ns\$|&\n      port: $KN_IMC_WEBHOOK_PORT|" "$f"
	done
	for s in eventing-webhook inmemorychannel-webhook; do
		printf -- '---\napiVersion: v1\nkind: Service\nmetadata: {name: %s, namespace: %s}\nspec: {type: ExternalName, externalName: %s}\n' "$s" "$KN_NS" "$HOST"
	done
	# one long-lived token per ServiceAccount the processes run as
	for s in eventing-webhook eventing-controller imc-controller mt-broker-ingress mt-broker-filter imc-dispatcher; do
		printf -- '---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: %s-local-token\n  namespace: %s\n  annotations: {kubernetes.io/service-account.name: %s}\ntype: kubernetes.io/service-account-token\n' "$s" "$KN_NS" "$s"
	done
}

# Eventing's features as deploy/ needs them: OIDC sender tokens (deploy/ turns sender authentication on) and
# Retry-After honoured (the Trigger's retryAfterMax). Applied before the data plane starts: ingress, filter and
# dispatcher load their OIDC verifier (discovery via knative-net's CONNECT to the API server) only at start or
# when config-features changes. Own field manager: the config/ apply above keeps its other keys.
knative_features() {
	printf -- '---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: config-features, namespace: %s}\ndata:\n  authentication-oidc: %s\n  delivery-retryafter: enabled\n' \
		"$KN_NS" "$([ "${PGW_KNATIVE_OIDC:-1}" = 0 ] && echo disabled || echo enabled)"
}

# Pods on the real node (the controller's K_SINK is the Broker's address) reach the broker ingress, a host process,
# at the node's address: its Service loses its selector (the ingress Deployment's pods are kwok's, never running)
# and gets an Endpoints object naming that address, which the mirroring controller turns into an EndpointSlice.
knative_ingress_for_pods() {
	node_enabled || return 0
	kc patch service broker-ingress -n $KN_NS --type=json -p '[{"op":"remove","path":"/spec/selector"}]' >/dev/null 2>&1 || true
	kc delete endpointslices -n $KN_NS --ignore-not-found \
		-l kubernetes.io/service-name=broker-ingress,endpointslice.kubernetes.io/managed-by=endpointslice-controller.k8s.io >/dev/null
	printf -- '---\napiVersion: v1\nkind: Endpoints\nmetadata: {name: broker-ingress, namespace: %s}\nsubsets:\n- addresses: [{ip: "%s"}]\n  ports: [{name: http, port: %s, protocol: TCP}, {name: https, port: %s, protocol: TCP}]\n' \
		"$KN_NS" "$NODE_IP" "$KN_INGRESS_PORT" "$KN_INGRESS_HTTPS_PORT" |
		kc apply --server-side --force-conflicts --field-manager=pgw-cluster -f - >/dev/null
}

knative_kubeconfigs() {
	local c sa token deadline=$((SECONDS + 60))
	for c in "${KNATIVE_COMPONENTS[@]}"; do
		[ "$c" = kn-net ] && continue
		sa=$(knative_sa_of "$c")
		until token=$(kc get secret -n $KN_NS "$sa-local-token" -o jsonpath='{.data.token}' 2>/dev/null) && [ -n "$token" ]; do
			((SECONDS < deadline)) || die "no token for ServiceAccount $KN_NS/$sa"
			sleep 0.2
		done
		local tmp="$KCFG_DIR/$c.kubeconfig.tmp.$$"
		cat >"$tmp" <<EOK
apiVersion: v1
kind: Config
clusters:
- name: pgw-local
  cluster: {server: "$API_URL", certificate-authority-data: $(b64 "$PKI/ca.crt")}
users:
- name: $sa
  user: {token: $(printf '%s' "$token" | base64 -d)}
contexts:
- name: pgw-local
  context: {cluster: pgw-local, user: $sa, namespace: $KN_NS}
current-context: pgw-local
EOK
		chmod 600 "$tmp"
		mv "$tmp" "$KCFG_DIR/$c.kubeconfig"
	done
}

# the sink namespace is for tests: `cloudevents listen` binds all interfaces
knative_netns() {
	local c n
	for c in "${KN_NETNS_COMPONENTS[@]}" sink; do
		n=$KN_NETNS_PREFIX${c#kn-}
		[ -e "/run/netns/$n" ] || ip netns add "$n"
		ip -n "$n" link set lo up
	done
}

knative_up() {
	knative_enabled || return 0
	local t0=$SECONDS
	# the dispatcher silently serves nothing when 8080/8443 are taken
	if ! pid_of kn-dispatcher >/dev/null && curl -s --max-time 1 -o /dev/null "http://$HOST:$KN_DISPATCHER_PORT/"; then
		die "port $KN_DISPATCHER_PORT is in use: Knative's IMC dispatcher needs it (and 8443)"
	fi
	knative_netns
	local -a files
	mapfile -t files < <(knative_manifest_args)
	kc apply --server-side --force-conflicts --field-manager=pgw-cluster "${files[@]}" >/dev/null
	knative_local_manifests | kc apply --server-side --force-conflicts --field-manager=pgw-cluster -f - >/dev/null
	knative_features | kc apply --server-side --force-conflicts --field-manager=pgw-cluster-features -f - >/dev/null
	knative_ingress_for_pods
	kc wait --for=condition=Established --timeout=60s crd/brokers.eventing.knative.dev crd/triggers.eventing.knative.dev \
		crd/inmemorychannels.messaging.knative.dev crd/subscriptions.messaging.knative.dev >/dev/null
	knative_kubeconfigs
	start_component kn-net
	start_together "${KNATIVE_COMPONENTS[@]:1}"
	# Brokers and Triggers are admitted only once the webhook has put its CA into its configurations
	local deadline=$((SECONDS + 60))
	until [ -n "$(kc get mutatingwebhookconfiguration webhook.eventing.knative.dev -o jsonpath='{.webhooks[0].clientConfig.caBundle}')" ]; do
		((SECONDS < deadline)) || die "the Knative webhook did not register (log: $LOGS/kn-webhook.log)"
		sleep 0.3
	done
	log "knative eventing up in $((SECONDS - t0))s: broker ingress http://$HOST:$KN_INGRESS_PORT"
}

# after the processes are stopped: processes left in our namespaces, then the namespaces
knative_down() {
	local c n pid
	# started while Knative was on (PGW_KNATIVE=0 now, or its sources gone): still ours to stop
	for c in "${KNATIVE_COMPONENTS[@]}"; do
		if pid=$(pid_of "$c"); then
			stop_pid "$pid" 2
			log "$c stopped"
		fi
		rm -f "$PIDS/$c.pid"
	done
	for c in "${KN_NETNS_COMPONENTS[@]}" sink; do
		n=$KN_NETNS_PREFIX${c#kn-}
		[ -e "/run/netns/$n" ] || continue
		for pid in $(ip netns pids "$n" 2>/dev/null); do
			log "stopping stray process $pid in netns $n"
			stop_pid "$pid" 2
		done
		ip netns delete "$n"
	done
}

knative_env() {
	knative_enabled || return 0
	cat <<EOE
export KNATIVE_BIN_DIR=$KNATIVE_BIN_DIR
export PGW_KNATIVE_INGRESS_URL=http://$HOST:$KN_INGRESS_PORT
export PGW_KNATIVE_PROXY_URL=http://$HOST:$KN_PROXY_PORT
export PGW_KNATIVE_SINK_NETNS=${KN_NETNS_PREFIX}sink
export PGW_KNATIVE_SINK_URL=http://$HOST:$KN_SINK_PORT
EOE
}
