# The real node of the local cluster, sourced by cluster.sh (uses its log/die/kc/go_build/gen_cert/...).
# kubelet + kube-proxy (same k8s.io/kubernetes build as the API server), containerd 2.x + runc, the CNI
# bridge from Debian's containernetworking-plugins, CoreDNS for cluster.local, and the echo host: the one
# "outside" a pod may reach, in a network namespace of its own. See cluster/README.md "The real node".
#
# Pods only run here when they tolerate the node's taint and select its label (kwok's fake nodes keep
# everything else). Nothing a pod sends may leave this machine: pods reach the node's bridge, the pod
# network, the service network and the echo host; a firewall rule drops and counts anything else.
NODE_NAME=pgw-node
NODE_LABEL=podgateway.io/node=real
NODE_TAINT=podgateway.io/node=real:NoSchedule
NODE_BRIDGE=pgw0
NODE_IP=10.88.0.1           # the bridge's address: the pods' gateway, the node's InternalIP
NODE_POD_CIDR=10.88.0.0/24
SERVICE_CIDR=10.96.0.0/16
CLUSTER_DNS_IP=10.96.0.10
# the echo host: a test host of the project, reached from the node by routing (veth pair), not a pod
ECHO_NET=10.250.0.0/30 ECHO_HOST_SIDE=10.250.0.1 ECHO_IP=10.250.0.2 ECHO_PORT=8080
ECHO_LINK=pgwecho0
# a destination nothing answers, routed into an empty namespace: the firewall's positive control
VOID_HOST_SIDE=198.51.100.254 VOID_IP=198.51.100.1 VOID_LINK=pgwvoid0
EGRESS_CHAIN=PGW-EGRESS
CONTAINERD_VERSION=v2.4.2
RUNC_VERSION=v1.5.3
COREDNS_VERSION=v1.15.0
LOCAL_REGISTRY=127.0.0.1:5001
PAUSE_IMAGE=registry.k8s.io/pause:3.10.1
NODE_DIR=$STATE/node
CONTAINERD_SOCK=$NODE_DIR/containerd/containerd.sock
NODE_CGROUP=pgw-node        # kubelet's cgroupRoot, in every v1 hierarchy
# the network namespaces are machine-wide: named after this cluster's state dir, like Knative's
NODE_NETNS_PREFIX=pgw-node-$(printf '%s' "$STATE" | sha256sum | cut -c1-6)-
ECHO_NETNS=${NODE_NETNS_PREFIX}echo
VOID_NETNS=${NODE_NETNS_PREFIX}void
COREDNS_HEALTH_PORT=16261 COREDNS_READY_PORT=16262 KUBE_PROXY_HEALTH_PORT=16263 KUBE_PROXY_METRICS_PORT=16264
KUBELET_PORT=10250 KUBELET_HEALTH_PORT=10248
NODE_COMPONENTS=(registry node-net containerd coredns kubelet kube-proxy echo-host)
CONTAINERD_BIN_DIR="" RUNC_BIN_DIR="" COREDNS_BIN_DIR=""

# Namespace annotations that put every pod of a namespace on the real node (the API server's PodNodeSelector and
# PodTolerationRestriction admission plugins add the node's selector and the toleration of its taint), as YAML lines
node_placement_annotations() {
	local key=${NODE_TAINT%%=*} rest=${NODE_TAINT#*=}
	printf '    %s\n' "scheduler.alpha.kubernetes.io/node-selector: $NODE_LABEL" \
		"scheduler.alpha.kubernetes.io/defaultTolerations: '[{\"key\":\"$key\",\"operator\":\"Equal\",\"value\":\"${rest%%:*}\",\"effect\":\"${rest#*:}\"}]'"
}

# PGW_NODE=0 leaves the real node out (kwok only, as before)
node_enabled() { [ "${PGW_NODE:-1}" != 0 ]; }

node_bin_dirs() {
	CONTAINERD_BIN_DIR=$BIN_ROOT/containerd-$CONTAINERD_VERSION-$(build_key "$CLUSTER_SRC/build/containerd" "-s -w")
	RUNC_BIN_DIR=$BIN_ROOT/runc-$RUNC_VERSION-$(build_key "$CLUSTER_SRC/build/runc" "-s -w seccomp cgo")
	COREDNS_BIN_DIR=$BIN_ROOT/coredns-$COREDNS_VERSION-$(build_key "$CLUSTER_SRC/build/coredns" "-s -w")
}

node_prereqs() {
	local missing=()
	[ -x /usr/lib/cni/bridge ] || missing+=(containernetworking-plugins)
	command -v iptables >/dev/null || missing+=(iptables)
	command -v conntrack >/dev/null || missing+=(conntrack)
	command -v socat >/dev/null || missing+=(socat)
	command -v docker-registry >/dev/null || missing+=(docker-registry)
	command -v buildah >/dev/null || missing+=(buildah)
	command -v skopeo >/dev/null || missing+=(skopeo)
	command -v debootstrap >/dev/null || missing+=(debootstrap)
	[ -f /usr/include/seccomp.h ] || missing+=(libseccomp-dev)
	command -v gcc >/dev/null || missing+=(gcc)
	if ((${#missing[@]})); then
		log "installing missing packages for the real node: ${missing[*]}"
		apt-get update -qq >&2
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
	fi
}

node_build_all() {
	go_build "$CONTAINERD_BIN_DIR" "$CLUSTER_SRC/build/containerd" "-s -w" github.com/containerd/containerd/v2/cmd/containerd \
		github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2 github.com/containerd/containerd/v2/cmd/ctr
	# runc needs cgo for seccomp (Debian's libseccomp-dev); Debian's own runc 1.1.5 fails every sandbox here
	CGO_ENABLED=1 go_build "$RUNC_BIN_DIR" "$CLUSTER_SRC/build/runc" "-s -w" -tags seccomp github.com/opencontainers/runc
	go_build "$COREDNS_BIN_DIR" "$CLUSTER_SRC/build/coredns" "-s -w" .
}

node_bin_of() {
	case $1 in
	registry) command -v docker-registry ;;
	node-net) command -v socat ;;
	containerd) echo "$CONTAINERD_BIN_DIR/containerd" ;;
	coredns) echo "$COREDNS_BIN_DIR/coredns" ;;
	kubelet) echo "$K8S_BIN_DIR/kubelet" ;;
	kube-proxy) echo "$K8S_BIN_DIR/kube-proxy" ;;
	echo-host) echo "$ROOT/node_modules/.bin/node" | xargs readlink -f ;;
	*) die "unknown component '$1' (known: ${COMPONENTS[*]})" ;;
	esac
}

node_args_of() {
	case $1 in
	# pods reach the API server as kubernetes.default (10.96.0.1:443 → the advertised NODE_IP:port): forwarded
	# from the bridge address to the API server on loopback
	node-net) printf '%s\n' "TCP-LISTEN:$APISERVER_PORT,bind=$NODE_IP,fork,reuseaddr" "TCP:$HOST:$APISERVER_PORT" ;;
	registry) printf '%s\n' serve "$NODE_DIR/registry.yml" ;;
	containerd) printf '%s\n' --config="$NODE_DIR/containerd.toml" ;;
	coredns) printf '%s\n' -conf="$NODE_DIR/Corefile" ;;
	kubelet)
		printf '%s\n' --config="$NODE_DIR/kubelet.yaml" --kubeconfig="$KCFG_DIR/kubelet.kubeconfig" \
			--hostname-override=$NODE_NAME --node-ip=$NODE_IP --node-labels=$NODE_LABEL \
			--root-dir="$NODE_DIR/kubelet" --cert-dir="$NODE_DIR/kubelet-pki"
		;;
	kube-proxy) printf '%s\n' --config="$NODE_DIR/kube-proxy.yaml" --hostname-override=$NODE_NAME ;;
	echo-host) printf '%s\n' "$CLUSTER_SRC/echo-host.mjs" "$ECHO_IP" "$ECHO_PORT" ;;
	esac
}

# printed one word a line: what launch_component puts before the binary
node_launcher() {
	case $1 in
	containerd) printf '%s\n' env "PATH=$CONTAINERD_BIN_DIR:$RUNC_BIN_DIR:/usr/sbin:/usr/bin:/sbin:/bin" ;;
	echo-host) printf '%s\n' ip netns exec "$ECHO_NETNS" ;;
	esac
}

node_healthy() {
	case $1 in
	registry) curl -fsS --max-time 2 -o /dev/null "http://$LOCAL_REGISTRY/v2/" 2>/dev/null ;;
	node-net) curl -fsS --max-time 2 --cacert "$PKI/ca.crt" --cert "$PKI/admin.crt" --key "$PKI/admin.key" \
		--resolve "kubernetes:$APISERVER_PORT:$NODE_IP" "https://kubernetes:$APISERVER_PORT/readyz" >/dev/null 2>&1 ;;
	containerd) "$CONTAINERD_BIN_DIR/ctr" --address "$CONTAINERD_SOCK" version >/dev/null 2>&1 ;;
	coredns) curl -fsS --max-time 2 "http://$HOST:$COREDNS_READY_PORT/ready" >/dev/null 2>&1 ;;
	kubelet) curl -fsS --max-time 2 "http://$HOST:$KUBELET_HEALTH_PORT/healthz" >/dev/null 2>&1 ;;
	kube-proxy) curl -fsS --max-time 2 "http://$HOST:$KUBE_PROXY_HEALTH_PORT/healthz" >/dev/null 2>&1 ;;
	echo-host) ip netns exec "$ECHO_NETNS" curl -fsS --max-time 2 "http://$ECHO_IP:$ECHO_PORT/healthz" >/dev/null 2>&1 ;;
	esac
}

# ---------------------------------------------------------------- host network
node_sysctl() { [ "$(cat "/proc/sys/${1//.//}")" = "$2" ] || sysctl -qw "$1=$2"; }

node_network_up() {
	if ! ip link show $NODE_BRIDGE >/dev/null 2>&1; then
		ip link add $NODE_BRIDGE type bridge
		ip addr add $NODE_IP/24 dev $NODE_BRIDGE
	fi
	node_sysctl net.ipv6.conf.$NODE_BRIDGE.disable_ipv6 1
	ip link set $NODE_BRIDGE up
	node_sysctl net.ipv4.ip_forward 1
	node_sysctl net.bridge.bridge-nf-call-iptables 1
	# a client reaches its gateway pod through the bridge address; an ICMP redirect in answer makes
	# client_init.sh's `ping` fail (pod-gateway on a bridge CNI)
	node_sysctl net.ipv4.conf.all.send_redirects 0
	node_sysctl net.ipv4.conf.$NODE_BRIDGE.send_redirects 0
	node_veth_netns "$ECHO_NETNS" $ECHO_LINK $ECHO_HOST_SIDE $ECHO_IP 30
	node_veth_netns "$VOID_NETNS" $VOID_LINK $VOID_HOST_SIDE $VOID_IP 24
	node_firewall
}

node_veth_netns() { # netns host-link host-ip ns-ip prefix
	local ns=$1 link=$2 hip=$3 nip=$4 len=$5
	[ -e "/run/netns/$ns" ] || ip netns add "$ns"
	if ! ip link show "$link" >/dev/null 2>&1; then
		ip link add "$link" type veth peer name eth0 netns "$ns"
		ip addr add "$hip/$len" dev "$link"
		ip -n "$ns" addr add "$nip/$len" dev eth0
	fi
	node_sysctl "net.ipv6.conf.$link.disable_ipv6" 1
	ip link set "$link" up
	ip -n "$ns" link set lo up
	ip -n "$ns" link set eth0 up
	ip -n "$ns" route replace default via "$hip"
}

# The egress guard: in mangle FORWARD (kube-proxy owns filter FORWARD and reorders it), before any
# routing decision sends a packet out of the machine's own interface. A pod may reach the pod network,
# the service network (already translated to an endpoint here), the node and the echo host; anything
# else is dropped and counted. IPv6 from pods is dropped whole.
node_firewall() {
	iptables -t mangle -N $EGRESS_CHAIN 2>/dev/null || iptables -t mangle -F $EGRESS_CHAIN
	iptables -t mangle -A $EGRESS_CHAIN -d $NODE_POD_CIDR -j RETURN
	iptables -t mangle -A $EGRESS_CHAIN -d $SERVICE_CIDR -j RETURN
	iptables -t mangle -A $EGRESS_CHAIN -d $ECHO_NET -j RETURN
	iptables -t mangle -A $EGRESS_CHAIN -m comment --comment "pgw: pod traffic to a non-local address" -j DROP
	local dev
	for dev in $NODE_BRIDGE $ECHO_LINK; do
		iptables -t mangle -C FORWARD -i $dev -j $EGRESS_CHAIN 2>/dev/null || iptables -t mangle -I FORWARD -i $dev -j $EGRESS_CHAIN
	done
	ip6tables -t mangle -C FORWARD -i $NODE_BRIDGE -j DROP 2>/dev/null || ip6tables -t mangle -I FORWARD -i $NODE_BRIDGE -j DROP
}

node_network_down() {
	local dev
	for dev in $NODE_BRIDGE $ECHO_LINK; do
		while iptables -t mangle -D FORWARD -i $dev -j $EGRESS_CHAIN 2>/dev/null; do :; done
	done
	while ip6tables -t mangle -D FORWARD -i $NODE_BRIDGE -j DROP 2>/dev/null; do :; done
	iptables -t mangle -F $EGRESS_CHAIN 2>/dev/null && iptables -t mangle -X $EGRESS_CHAIN
	local ns pid
	# deleting a namespace frees its end of a veth pair later, in the kernel's own time (an after-down check once saw
	# pgwecho0 still there): deleting the host's end takes both at once
	for dev in $ECHO_LINK $VOID_LINK; do
		ip link show "$dev" >/dev/null 2>&1 && ip link delete "$dev"
	done
	for ns in "$ECHO_NETNS" "$VOID_NETNS"; do
		[ -e "/run/netns/$ns" ] || continue
		# a process left in it keeps the namespace, and with it the veth, alive
		for pid in $(ip netns pids "$ns" 2>/dev/null); do stop_pid "$pid" 2; done
		ip netns delete "$ns"
	done
	ip link show $NODE_BRIDGE >/dev/null 2>&1 && ip link delete $NODE_BRIDGE
	return 0
}

# ---------------------------------------------------------------- configuration
node_certs() {
	gen_cert kubelet-client ca "/O=system:nodes/CN=system:node:$NODE_NAME" clientAuth
	gen_cert kubelet-serving ca "/CN=$NODE_NAME" serverAuth "IP:$NODE_IP,DNS:$NODE_NAME"
	gen_cert apiserver-kubelet-client ca "/O=system:masters/CN=kube-apiserver-kubelet-client" clientAuth
	gen_cert kube-proxy ca "/O=system:node-proxier/CN=system:kube-proxy" clientAuth
	gen_cert coredns ca "/CN=system:coredns" clientAuth
}

node_config() {
	mkdir -p "$NODE_DIR"/{containerd,cni,certs.d,kubelet} "$NODE_DIR/cni-ipam"
	node_certs
	write_kubeconfig "$KCFG_DIR/kubelet.kubeconfig" "system:node:$NODE_NAME" kubelet-client
	write_kubeconfig "$KCFG_DIR/kube-proxy.kubeconfig" system:kube-proxy kube-proxy
	write_kubeconfig "$KCFG_DIR/coredns.kubeconfig" system:coredns coredns
	# the local registry every image of the node comes from; its blobs are a per-machine cache, kept across down
	cat >"$NODE_DIR/registry.yml" <<EOF
version: 0.1
log: {level: warn, formatter: text}
storage:
  filesystem: {rootdirectory: $CACHE/registry}
  delete: {enabled: true}
http:
  addr: $LOCAL_REGISTRY
EOF
	# pods with dnsPolicy Default get this, never the machine's own resolvers
	echo "nameserver $CLUSTER_DNS_IP" >"$NODE_DIR/resolv.conf"
	cat >"$NODE_DIR/containerd.toml" <<EOF
version = 3
root = "$NODE_DIR/containerd/root"
state = "$NODE_DIR/containerd/state"

[grpc]
  address = "$CONTAINERD_SOCK"

[plugins.'io.containerd.cri.v1.images']
  snapshotter = "overlayfs"
  [plugins.'io.containerd.cri.v1.images'.pinned_images]
    sandbox = "$PAUSE_IMAGE"
  [plugins.'io.containerd.cri.v1.images'.registry]
    config_path = "$NODE_DIR/certs.d"

[plugins.'io.containerd.cri.v1.runtime']
  # this machine has no CAP_SYS_RESOURCE: negative OOM scores cannot be set
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  [plugins.'io.containerd.cri.v1.runtime'.cni]
    bin_dirs = ["/usr/lib/cni"]
    conf_dir = "$NODE_DIR/cni"
  [plugins.'io.containerd.cri.v1.runtime'.containerd]
    default_runtime_name = "runc"
    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
        BinaryName = "$RUNC_BIN_DIR/runc"
        SystemdCgroup = false

# nothing outside the node's own folder
[plugins.'io.containerd.nri.v1.nri']
  disable = true
[plugins.'io.containerd.internal.v1.opt']
  path = "$NODE_DIR/containerd/opt"

[plugins.'io.containerd.grpc.v1.cri']
  disable_tcp_service = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
EOF
	node_registry_hosts
	cat >"$NODE_DIR/cni/10-pgw.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "pgw",
  "plugins": [
    {
      "type": "bridge", "bridge": "$NODE_BRIDGE", "isGateway": true, "ipMasq": false, "hairpinMode": true,
      "ipam": {
        "type": "host-local", "dataDir": "$NODE_DIR/cni-ipam",
        "ranges": [[{"subnet": "$NODE_POD_CIDR", "gateway": "$NODE_IP"}]],
        "routes": [{"dst": "0.0.0.0/0"}]
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
EOF
	cat >"$NODE_DIR/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $NODE_IP
port: $KUBELET_PORT
readOnlyPort: 0
healthzBindAddress: $HOST
healthzPort: $KUBELET_HEALTH_PORT
tlsCertFile: $PKI/kubelet-serving.crt
tlsPrivateKeyFile: $PKI/kubelet-serving.key
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $PKI/ca.crt}
authorization: {mode: Webhook}
containerRuntimeEndpoint: unix://$CONTAINERD_SOCK
# this machine is cgroup v1 (hybrid), which kubelet 1.36 refuses unless told
failCgroupV1: false
cgroupDriver: cgroupfs
cgroupRoot: /$NODE_CGROUP
failSwapOn: false
clusterDomain: cluster.local
clusterDNS: [$CLUSTER_DNS_IP]
resolvConf: $NODE_DIR/resolv.conf
registerWithTaints:
- {key: ${NODE_TAINT%%=*}, value: real, effect: NoSchedule}
volumePluginDir: $NODE_DIR/kubelet/volume-plugins
serializeImagePulls: false
imageGCHighThresholdPercent: 100
evictionHard: {memory.available: 100Mi, nodefs.available: 1%, imagefs.available: 1%}
maxPods: 110
EOF
	cat >"$NODE_DIR/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: $KCFG_DIR/kube-proxy.kubeconfig}
mode: iptables
clusterCIDR: $NODE_POD_CIDR
bindAddress: $HOST
healthzBindAddress: $HOST:$KUBE_PROXY_HEALTH_PORT
metricsBindAddress: $HOST:$KUBE_PROXY_METRICS_PORT
# leave the machine's conntrack settings alone
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
EOF
	# cluster names only; no forward plugin exists in this build, so nothing is asked off the machine
	cat >"$NODE_DIR/Corefile" <<EOF
cluster.local:53 in-addr.arpa:53 ip6.arpa:53 {
    bind $NODE_IP
    errors
    health $HOST:$COREDNS_HEALTH_PORT
    ready $HOST:$COREDNS_READY_PORT
    kubernetes cluster.local in-addr.arpa ip6.arpa {
        kubeconfig $KCFG_DIR/coredns.kubeconfig pgw-local
        pods insecure
    }
    cache 5
    loadbalance
}
.:53 {
    bind $NODE_IP
    errors
}
EOF
}

# containerd pulls every image from the local registry, whatever registry its name says: one hosts.toml per
# name the cluster uses, and _default for any other, so that no pull ever leaves the machine
node_registry_hosts() {
	local name
	for name in _default docker.io ghcr.io registry.k8s.io "$LOCAL_REGISTRY"; do
		mkdir -p "$NODE_DIR/certs.d/$name"
		cat >"$NODE_DIR/certs.d/$name/hosts.toml" <<EOF
server = "http://$LOCAL_REGISTRY"

[host."http://$LOCAL_REGISTRY"]
  capabilities = ["pull", "resolve"]
  skip_verify = true
EOF
	done
}

# kubelet's cgroupRoot must exist in every v1 hierarchy; cpuset's needs cpus and mems before use
node_cgroups() {
	local h
	for h in /sys/fs/cgroup/*/; do
		[ -d "$h" ] || continue
		case $h in */unified/) continue ;; esac
		mkdir -p "$h$NODE_CGROUP"
		if [ -f "$h/cpuset.cpus" ]; then
			[ -n "$(cat "$h$NODE_CGROUP/cpuset.cpus")" ] || cat "$h/cpuset.cpus" >"$h$NODE_CGROUP/cpuset.cpus"
			[ -n "$(cat "$h$NODE_CGROUP/cpuset.mems")" ] || cat "$h/cpuset.mems" >"$h$NODE_CGROUP/cpuset.mems"
		fi
	done
}

# ---------------------------------------------------------------- objects
# RBAC of CoreDNS and the two Services the node serves from host processes: the cluster DNS
# (10.96.0.10 → CoreDNS on the bridge address). The kubernetes Service's endpoint is the API server's
# own (--advertise-address=$NODE_IP, lease reconciler), forwarded by node-net.
node_manifest() {
	cat <<EOF
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: "system:coredns"}
rules:
- apiGroups: [""]
  resources: [endpoints, services, pods, namespaces]
  verbs: [list, watch]
- apiGroups: [discovery.k8s.io]
  resources: [endpointslices]
  verbs: [list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: "system:coredns"}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: "system:coredns"}
subjects:
- {apiGroup: rbac.authorization.k8s.io, kind: User, name: "system:coredns"}
---
apiVersion: v1
kind: Service
metadata:
  name: kube-dns
  namespace: kube-system
  labels: {k8s-app: kube-dns, kubernetes.io/name: CoreDNS}
spec:
  clusterIP: $CLUSTER_DNS_IP
  ports:
  - {name: dns, port: 53, protocol: UDP, targetPort: 53}
  - {name: dns-tcp, port: 53, protocol: TCP, targetPort: 53}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: kube-dns-node
  namespace: kube-system
  labels: {kubernetes.io/service-name: kube-dns, endpointslice.kubernetes.io/managed-by: pgw-cluster}
addressType: IPv4
ports:
- {name: dns, port: 53, protocol: UDP}
- {name: dns-tcp, port: 53, protocol: TCP}
endpoints:
- addresses: ["$NODE_IP"]
  conditions: {ready: true}
  nodeName: $NODE_NAME
EOF
}

node_up() {
	node_enabled || return 0
	local t0=$SECONDS
	node_network_up
	node_cgroups
	node_manifest | kc apply --server-side --force-conflicts --field-manager=pgw-cluster -f - >/dev/null
	start_component registry
	images_build_all
	# kubelet wants its runtime at start; the rest only need the API server
	start_component containerd
	start_together node-net coredns kubelet kube-proxy echo-host
	kc wait --for=condition=Ready --timeout=120s node/$NODE_NAME >/dev/null
	node_gateways
	log "real node $NODE_NAME up in $((SECONDS - t0))s (pods $NODE_POD_CIDR, echo host http://$ECHO_IP:$ECHO_PORT)"
}

# Gateways foo and bar as the pod-gateway chart deploys them (cluster/pod-gateway-chart.ts renders it from
# deploy/'s values files and the local layer), in namespace "gateways" where the webhooks look for them
node_gateways() {
	local gw
	for gw in foo bar; do
		"$ROOT/node_modules/.bin/node" "$CLUSTER_SRC/pod-gateway-chart.ts" --release $gw --namespace gateways \
			-f "$ROOT/deploy/pod-gateway-$gw-values.yaml" -f "$CLUSTER_SRC/pod-gateway-local-values.yaml"
	done | kc apply --server-side --force-conflicts --field-manager=pgw-cluster -f - >/dev/null
	kc -n gateways rollout status deployment/foo-pod-gateway --timeout=180s >/dev/null
	kc -n gateways rollout status deployment/bar-pod-gateway --timeout=180s >/dev/null
}

# every container process of the node: the shims and what runs in kubelet's cgroups
node_container_pids() {
	local p exe
	for p in /proc/[0-9]*; do
		exe=$(readlink "$p/exe" 2>/dev/null) || continue
		case $exe in
		*/containerd-shim-runc-v2) grep -qa "$NODE_DIR" "$p/cmdline" 2>/dev/null && echo "${p#/proc/}" ;;
		esac
	done
	local h
	for h in /sys/fs/cgroup/*/"$NODE_CGROUP"; do
		[ -d "$h" ] && find "$h" -name cgroup.procs -exec cat {} + 2>/dev/null
	done
}

# kube-proxy's and the kubelet's chains (KUBE-*, in every table, IPv4 and IPv6) and the rules that jump to them
node_iptables_clean() {
	local cmd table line chain saved chains
	for cmd in iptables ip6tables; do
		for table in filter nat mangle; do
			# read once, no `save | grep -q` (pipefail: grep -q ends the pipe early and fails it)
			saved=$("$cmd-save" -t $table 2>/dev/null) || continue
			[[ $saved == *KUBE-* ]] || continue
			while read -r line; do
				eval "$cmd -t $table -D ${line#-A }" 2>/dev/null || true
			done < <(grep -E '^-A [A-Z]+ .*-j KUBE-' <<<"$saved" || true)
			chains=$(sed -n 's/^:\(KUBE-[^ ]*\) .*/\1/p' <<<"$saved")
			for chain in $chains; do "$cmd" -t $table -F "$chain"; done
			for chain in $chains; do "$cmd" -t $table -X "$chain"; done
		done
	done
}

# after the processes are stopped: containers, mounts, kube-proxy's rules, cgroups, network
node_down() {
	local pid m h
	for pid in $(node_container_pids | sort -u); do kill -KILL "$pid" 2>/dev/null || true; done
	for m in $(awk -v d="$NODE_DIR/" 'index($5, d) == 1 {print $5}' /proc/self/mountinfo | sort -r); do
		umount -l "$m" 2>/dev/null || true
	done
	node_iptables_clean
	for h in /sys/fs/cgroup/*/"$NODE_CGROUP"; do
		[ -d "$h" ] && find "$h" -depth -type d -exec rmdir {} + 2>/dev/null
	done
	node_network_down
	# containerd's state (netns mounts, tasks) and kubelet's volumes are gone with their processes
	rm -rf "$NODE_DIR/containerd/state" "$NODE_DIR/kubelet" "$NODE_DIR/cni-ipam"
}

node_env() {
	node_enabled || return 0
	cat <<EOE
export PGW_NODE_NAME=$NODE_NAME
export PGW_NODE_IP=$NODE_IP
export PGW_NODE_TAINT=$NODE_TAINT
export PGW_NODE_LABEL=$NODE_LABEL
export PGW_ECHO_URL=http://$ECHO_IP:$ECHO_PORT
export PGW_ECHO_NETNS=$ECHO_NETNS
export PGW_VOID_IP=$VOID_IP
export PGW_EGRESS_CHAIN=$EGRESS_CHAIN
export CONTAINERD_ADDRESS=$CONTAINERD_SOCK
export CTR=$CONTAINERD_BIN_DIR/ctr
EOE
}
