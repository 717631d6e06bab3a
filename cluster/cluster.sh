#!/usr/bin/env bash
# Local Kubernetes cluster for this project: etcd, kube-apiserver, kube-controller-manager,
# kube-scheduler, kwok (3 fake nodes) and the pod-gateway webhook (gateway-admision-controller) for
# gateways foo and bar; also builds the CloudEvents conformance CLI the tests use.
# Everything listens on 127.0.0.1. See cluster/README.md.
#
#   bash cluster/cluster.sh up|down|env|status|build|stop <component>|start <component>|logs <component>
set -euo pipefail

ROOT=$(cd -P "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CLUSTER_SRC=$ROOT/cluster
# physical paths: process checks compare them with /proc/<pid>/exe
CACHE=$(mkdir -p "${PGW_CACHE_DIR:-$ROOT/.cache}" && cd -P "${PGW_CACHE_DIR:-$ROOT/.cache}" && pwd)
BIN_ROOT=$CACHE/bin
STATE=$(mkdir -p "${PGW_STATE_DIR:-$ROOT/.cache/cluster}" && cd -P "${PGW_STATE_DIR:-$ROOT/.cache/cluster}" && pwd)
PKI=$STATE/pki
PIDS=$STATE/pids
LOGS=$STATE/logs
KCFG_DIR=$STATE/kubeconfigs
KUBECONFIG_PATH=$STATE/kubeconfig
KNATIVE_CRDS_DIR=${PGW_KNATIVE_CRDS_DIR:-$ROOT/../shared/knative-crds}
# upstream sources the Go module proxy does not serve (read-only; built from copies, see its README.md)
VENDOR=${PGW_VENDOR_DIR:-$ROOT/../shared/vendor}

K8S_VERSION=v1.36.3
ETCD_VERSION=v3.6.8
KWOK_VERSION=v0.8.0
POD_GATEWAY_IMAGE=ghcr.io/angelnu/pod-gateway:v1.13.0
# its go.mod pairs client-go v0.35 with api v0.36, which does not compile; v0.36.3 matches the cluster
WEBHOOK_CLIENT_GO=v0.36.3

HOST=127.0.0.1
# Fixed ports; the PGW_*_PORT overrides exist only to run a second, throw-away cluster beside the main one.
APISERVER_PORT=${PGW_APISERVER_PORT:-16443}
ETCD_CLIENT_PORT=${PGW_ETCD_CLIENT_PORT:-12379}
ETCD_PEER_PORT=${PGW_ETCD_PEER_PORT:-12380}
CM_PORT=${PGW_CONTROLLER_MANAGER_PORT:-16257}
SCHED_PORT=${PGW_SCHEDULER_PORT:-16259}
KWOK_PORT=${PGW_KWOK_PORT:-16260}
WEBHOOK_FOO_PORT=${PGW_WEBHOOK_FOO_PORT:-18443}
WEBHOOK_BAR_PORT=${PGW_WEBHOOK_BAR_PORT:-18444}
API_URL=https://$HOST:$APISERVER_PORT

COMPONENTS=(etcd apiserver webhook-foo webhook-bar controller-manager scheduler kwok)
# Knative Eventing (cluster/knative.sh); PGW_KNATIVE=0 leaves it out
source "$CLUSTER_SRC/knative.sh"
knative_enabled && COMPONENTS+=("${KNATIVE_COMPONENTS[@]}")
# the real node (cluster/node.sh) and the images it runs (cluster/images.sh); PGW_NODE=0 leaves them out
source "$CLUSTER_SRC/images.sh"
source "$CLUSTER_SRC/node.sh"
node_enabled && COMPONENTS+=("${NODE_COMPONENTS[@]}")
# Knative Serving and Kourier (cluster/serving.sh): pods on the real node; PGW_SERVING=0 leaves them out
source "$CLUSTER_SRC/serving.sh"
# the CloudEvents Player (cluster/player.sh): its application and image; PGW_PLAYER=0 leaves it out
source "$CLUSTER_SRC/player.sh"
NODES=(kwok-node-0 kwok-node-1 kwok-node-2)

log() { printf '[cluster] %s\n' "$*" >&2; }
die() { printf '[cluster] error: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------- prerequisites
ensure_prereqs() {
	local missing=()
	command -v openssl >/dev/null || missing+=(openssl)
	command -v curl >/dev/null || missing+=(curl)
	command -v flock >/dev/null || missing+=(util-linux)
	command -v setsid >/dev/null || missing+=(util-linux)
	command -v unshare >/dev/null || missing+=(util-linux)
	command -v mount >/dev/null || missing+=(mount)
	# the tests run `cloudevents listen` in a network namespace of its own, joined by a veth pair
	command -v nsenter >/dev/null || missing+=(util-linux)
	command -v ip >/dev/null || missing+=(iproute2)
	command -v sha256sum >/dev/null || missing+=(coreutils)
	if ((${#missing[@]})); then
		log "installing missing packages: ${missing[*]}"
		local sudo=""
		[ "$(id -u)" = 0 ] || sudo=sudo
		$sudo apt-get update -qq >&2
		DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >&2
	fi
	command -v go >/dev/null || die "Go (>= 1.26) is required to build the cluster binaries"
	node_enabled && node_prereqs
	player_prereqs
	return 0
}

# ---------------------------------------------------------------- build (cached)
# Each build output lives in $BIN_ROOT/<name>-<version>-<key>, where key hashes the
# module files, the build flags and the Go version, so any change rebuilds.
k8s_ldflags() {
	local minor=${K8S_VERSION#v1.}
	minor=${minor%%.*}
	local ld="-s -w" p
	for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
		ld+=" -X $p.gitVersion=$K8S_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor"
		ld+=" -X $p.gitTreeState=clean -X $p.gitCommit=0000000000000000000000000000000000000000"
		ld+=" -X $p.buildDate=1970-01-01T00:00:00Z"
	done
	printf '%s' "$ld"
}

build_key() { # dir extra-string
	local dir=$1 extra=$2
	{
		cat "$dir"/go.mod "$dir"/go.sum
		find "$dir" -maxdepth 1 -name '*.go' ! -name '*_test.go' -print0 | sort -z | xargs -0 -r cat
		printf '%s\n' "$extra"
		go env GOVERSION GOOS GOARCH 2>/dev/null || true
	} | sha256sum | cut -c1-12
}

# key of a vendored module built with -mod=vendor: its go.mod, go.sum and vendor/modules.txt stand for its tree
vendored_module_key() { # module-dir extra-line...
	{
		cat "$1/go.mod" "$1/go.sum" "$1/vendor/modules.txt" 2>/dev/null || true
		printf '%s\n' "${@:2}" "-s -w"
		go env GOVERSION GOOS GOARCH 2>/dev/null || true
	} | sha256sum | cut -c1-12
}

# key of vendored source trees: every file's path and content
tree_key() { # extra-string dir...
	local extra=$1 d
	shift
	{
		for d in "$@"; do
			# missing: vendor_copy says so when a build needs it
			[ -d "$d" ] && (cd "$d" && find . -type f ! -path './.git/*' -print0 | LC_ALL=C sort -z | xargs -0 sha256sum)
		done
		printf '%s\n' "$extra"
		go env GOVERSION GOOS GOARCH 2>/dev/null || true
	} | sha256sum | cut -c1-12
}

K8S_BIN_DIR="" ETCD_BIN_DIR="" KWOK_BIN_DIR="" WEBHOOK_BIN_DIR="" CE_BIN_DIR=""
compute_bin_dirs() {
	K8S_BIN_DIR=$BIN_ROOT/kubernetes-$K8S_VERSION-$(build_key "$CLUSTER_SRC/build/kubernetes" "$(k8s_ldflags)")
	ETCD_BIN_DIR=$BIN_ROOT/etcd-$ETCD_VERSION-$(build_key "$CLUSTER_SRC/build/etcd" "-s -w")
	KWOK_BIN_DIR=$BIN_ROOT/kwok-$KWOK_VERSION-$(build_key "$CLUSTER_SRC/build/kwok" "-s -w")
	WEBHOOK_BIN_DIR=$BIN_ROOT/gateway-admision-controller-$(tree_key "$(declare -f build_webhook) $WEBHOOK_CLIENT_GO" \
		"$VENDOR/gateway-admision-controller" "$VENDOR/kubewebhook")
	CE_BIN_DIR=$BIN_ROOT/cloudevents-conformance-$(tree_key "$(declare -f build_cloudevents)" "$VENDOR/cloudevents-conformance")
	knative_bin_dirs
	node_bin_dirs
	serving_bin_dirs
	player_bin_dirs
}

go_build() { # out-dir module-dir ldflags pkgs...
	local out=$1 mod=$2 ld=$3
	shift 3
	[ -f "$out/.complete" ] && return 0
	local tmp="$out.tmp.$$"
	rm -rf "$tmp"
	mkdir -p "$tmp"
	log "building $(basename "$out") (one-time; cached in $BIN_ROOT)"
	local t0=$SECONDS
	(cd "$mod" && go build -buildvcs=false -trimpath -ldflags="$ld" -o "$tmp/" "$@") >&2
	# go names the binary of go.etcd.io/etcd/server/v3 "server"
	[ -f "$tmp/server" ] && mv "$tmp/server" "$tmp/etcd"
	# and the webhook's main package (./cmd) "cmd"
	[ -f "$tmp/cmd" ] && mv "$tmp/cmd" "$tmp/gateway-admision-controller"
	touch "$tmp/.complete"
	rm -rf "$out"
	mv "$tmp" "$out"
	log "built $(basename "$out") in $((SECONDS - t0))s"
}

# the file a path of a vendored tree stands for: the export turned symlinks into files holding the link target
vendored_file() { # path
	if grep -q : "$1"; then echo "$1"; else realpath -m "$(dirname "$1")/$(cat "$1")"; fi
}

# a writable copy of a vendored module, to build in; printed path is removed by the caller
vendor_copy() { # vendor-folder
	local tmp
	[ -d "$VENDOR/$1" ] || die "$VENDOR/$1 missing: upstream sources, expected in ../shared/vendor beside the repository (or set PGW_VENDOR_DIR)"
	tmp=$(mktemp -d "$BIN_ROOT/.src-$1.XXXXXX")
	cp -R "$VENDOR/$1/." "$tmp/"
	chmod -R u+w "$tmp"
	echo "$tmp"
}

# The real pod-gateway webhook: kubewebhook (its framework) from the vendored copy too, client-go pinned.
build_webhook() {
	[ -f "$WEBHOOK_BIN_DIR/.complete" ] && return 0
	local src kwh
	src=$(vendor_copy gateway-admision-controller)
	kwh=$(cd -P "$VENDOR/kubewebhook" && pwd)
	# toolchain=none: build with the installed Go (its go.mod names a newer toolchain it does not need)
	(cd "$src" && go mod edit -replace "github.com/slok/kubewebhook/v2=$kwh" \
		-require="k8s.io/client-go@$WEBHOOK_CLIENT_GO" -toolchain=none && go mod tidy) >&2
	go_build "$WEBHOOK_BIN_DIR" "$src" "-s -w" ./cmd
	rm -rf "$src"
}

# The CloudEvents conformance CLI (send, invoke, listen), used by the tests as sender and K_SINK.
build_cloudevents() {
	[ -f "$CE_BIN_DIR/.complete" ] && return 0
	local src
	src=$(vendor_copy cloudevents-conformance)
	go_build "$CE_BIN_DIR" "$src" "-s -w" ./cmd/cloudevents
	rm -rf "$src"
}

# kwok needs Stage objects; use the "fast" set kwok itself ships (node-initialize,
# node-heartbeat-with-lease, pod-ready, pod-complete, pod-delete), read from its module.
kwok_stages() {
	[ -s "$KWOK_BIN_DIR/stages.yaml" ] && return 0
	local dir f
	dir=$(cd "$CLUSTER_SRC/build/kwok" && go list -m -f '{{.Dir}}' sigs.k8s.io/kwok)
	for f in node/fast/node-initialize.yaml node/heartbeat-with-lease/node-heartbeat-with-lease.yaml \
		pod/fast/pod-ready.yaml pod/fast/pod-complete.yaml pod/fast/pod-delete.yaml; do
		echo "---"
		cat "$dir/kustomize/stage/$f"
	done >"$KWOK_BIN_DIR/stages.yaml.tmp"
	mv "$KWOK_BIN_DIR/stages.yaml.tmp" "$KWOK_BIN_DIR/stages.yaml"
}

build_all() {
	ensure_prereqs
	knative_warn_missing
	mkdir -p "$BIN_ROOT"
	compute_bin_dirs
	local done_all=1 d
	for d in "$K8S_BIN_DIR" "$ETCD_BIN_DIR" "$KWOK_BIN_DIR" "$WEBHOOK_BIN_DIR" "$CE_BIN_DIR"; do
		[ -f "$d/.complete" ] || done_all=0
	done
	[ -s "$KWOK_BIN_DIR/stages.yaml" ] || done_all=0
	knative_enabled && { [ -f "$KNATIVE_BIN_DIR/.complete" ] && [ -f "$KNET_BIN_DIR/.complete" ] || done_all=0; }
	node_enabled && for d in "$CONTAINERD_BIN_DIR" "$RUNC_BIN_DIR" "$COREDNS_BIN_DIR"; do [ -f "$d/.complete" ] || done_all=0; done
	serving_enabled && { serving_built || done_all=0; }
	player_enabled && { player_built || done_all=0; }
	((done_all)) && return 0
	exec 8>"$BIN_ROOT/.build-lock"
	flock 8
	rm -rf "$BIN_ROOT"/.src-* # copies left by an interrupted build
	build_webhook
	build_cloudevents
	go_build "$ETCD_BIN_DIR" "$CLUSTER_SRC/build/etcd" "-s -w" go.etcd.io/etcd/server/v3
	go_build "$KWOK_BIN_DIR" "$CLUSTER_SRC/build/kwok" "-s -w" sigs.k8s.io/kwok/cmd/kwok
	kwok_stages
	go_build "$K8S_BIN_DIR" "$CLUSTER_SRC/build/kubernetes" "$(k8s_ldflags)" \
		k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
		k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubectl \
		k8s.io/kubernetes/cmd/kubelet k8s.io/kubernetes/cmd/kube-proxy
	node_enabled && node_build_all
	knative_enabled && knative_build_all
	serving_enabled && serving_build_all
	player_enabled && player_build
	flock -u 8
}

# ---------------------------------------------------------------- certificates
ossl() { openssl "$@" 2>/dev/null; }

gen_ca() { # name cn
	[ -f "$PKI/$1.crt" ] && return 0
	ossl ecparam -name prime256v1 -genkey -noout -out "$PKI/$1.key"
	ossl req -x509 -new -key "$PKI/$1.key" -sha256 -days 3650 -subj "/CN=$2" \
		-addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" \
		-out "$PKI/$1.crt"
}

gen_cert() { # name ca subject eku san(optional)
	local name=$1 ca=$2 subj=$3 eku=$4 san=${5:-}
	[ -f "$PKI/$name.crt" ] && return 0
	ossl ecparam -name prime256v1 -genkey -noout -out "$PKI/$name.key"
	ossl req -new -key "$PKI/$name.key" -subj "$subj" -out "$PKI/$name.csr"
	{
		echo "basicConstraints=CA:FALSE"
		echo "keyUsage=critical,digitalSignature,keyEncipherment"
		echo "extendedKeyUsage=$eku"
		[ -n "$san" ] && echo "subjectAltName=$san"
	} >"$PKI/$name.ext"
	ossl x509 -req -in "$PKI/$name.csr" -CA "$PKI/$ca.crt" -CAkey "$PKI/$ca.key" -CAcreateserial \
		-days 3650 -sha256 -extfile "$PKI/$name.ext" -out "$PKI/$name.crt"
	rm -f "$PKI/$name.csr" "$PKI/$name.ext"
}

ensure_certs() {
	mkdir -p "$PKI"
	chmod 700 "$PKI"
	gen_ca ca "pgw-local-cluster-ca"
	# the node's address too: the API server advertises it (kubernetes.default, its OIDC jwks_uri); a certificate
	# made before the node existed is made again
	if [ -f "$PKI/apiserver.crt" ] && ! openssl x509 -in "$PKI/apiserver.crt" -noout -ext subjectAltName 2>/dev/null | grep -qE "IP Address:$NODE_IP(,|$)"; then
		rm -f "$PKI/apiserver.crt"
	fi
	gen_cert apiserver ca "/CN=kube-apiserver" serverAuth \
		"IP:127.0.0.1,IP:10.96.0.1,IP:$NODE_IP,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
	gen_cert admin ca "/O=system:masters/CN=kubernetes-admin" clientAuth
	gen_cert controller-manager ca "/CN=system:kube-controller-manager" clientAuth
	gen_cert scheduler ca "/CN=system:kube-scheduler" clientAuth
	gen_cert kwok ca "/O=system:masters/CN=kwok-controller" clientAuth
	gen_cert apiserver-webhook-client ca "/CN=kube-apiserver-webhook-client" clientAuth
	# the webhooks get their own CA, passed to the apiserver as caBundle
	gen_ca webhook-ca "pgw-gateway-webhook-ca"
	gen_cert webhook webhook-ca "/CN=gateway-webhook" serverAuth "IP:127.0.0.1,DNS:localhost"
	if [ ! -f "$PKI/sa.key" ]; then
		ossl genrsa -out "$PKI/sa.key" 2048
		ossl rsa -in "$PKI/sa.key" -pubout -out "$PKI/sa.pub"
	fi
}

b64() { base64 -w0 <"$1"; }

write_kubeconfig() { # path user cert-name
	local path=$1 user=$2 cert=$3
	local tmp="$path.tmp.$$"
	cat >"$tmp" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: pgw-local
  cluster:
    server: $API_URL
    certificate-authority-data: $(b64 "$PKI/ca.crt")
users:
- name: $user
  user:
    client-certificate-data: $(b64 "$PKI/$cert.crt")
    client-key-data: $(b64 "$PKI/$cert.key")
contexts:
- name: pgw-local
  context:
    cluster: pgw-local
    user: $user
    namespace: default
current-context: pgw-local
EOF
	chmod 600 "$tmp"
	if cmp -s "$tmp" "$path"; then rm -f "$tmp"; else mv "$tmp" "$path"; fi
}

ensure_config() {
	mkdir -p "$PIDS" "$LOGS" "$KCFG_DIR" "$STATE/etcd"
	ensure_certs
	write_kubeconfig "$KUBECONFIG_PATH" kubernetes-admin admin
	local c
	for c in controller-manager scheduler kwok; do
		write_kubeconfig "$KCFG_DIR/$c.kubeconfig" "$c" "$c"
	done
	# What a webhook pod of namespace "gateways" would see as /etc/resolv.conf and /etc/hosts: it builds
	# the pods' dnsConfig from the first and must resolve its --gateway name at start (the second).
	local gw
	mkdir -p "$STATE/webhook-etc"
	cat >"$STATE/webhook-etc/resolv.conf" <<EOF
search gateways.svc.cluster.local svc.cluster.local cluster.local
nameserver 10.96.0.10
options ndots:5
EOF
	for gw in foo bar; do
		printf '127.0.0.1 localhost\n%s %s\n' "$(gateway_ip "$gw")" "$(gateway_service "$gw")" >"$STATE/webhook-etc/hosts-$gw"
	done
}

# The gateway Service the pod-gateway chart (7.0.3 and later: "<fullname>-main") makes for release <gw>
# in namespace "gateways"; fullname = "<release>-pod-gateway".
gateway_service() { echo "$1-pod-gateway-main.gateways.svc.cluster.local"; }
# a gateway pod address (the Service is headless) for the webhook's start-up lookup
gateway_ip() { if [ "$1" = foo ]; then echo 10.244.255.1; else echo 10.244.255.2; fi; }

# ---------------------------------------------------------------- processes
bin_of() {
	case $1 in
	etcd) echo "$ETCD_BIN_DIR/etcd" ;;
	apiserver) echo "$K8S_BIN_DIR/kube-apiserver" ;;
	controller-manager) echo "$K8S_BIN_DIR/kube-controller-manager" ;;
	scheduler) echo "$K8S_BIN_DIR/kube-scheduler" ;;
	kwok) echo "$KWOK_BIN_DIR/kwok" ;;
	webhook-foo | webhook-bar) echo "$WEBHOOK_BIN_DIR/gateway-admision-controller" ;;
	kn-*) knative_bin_of "$1" ;;
	*) node_bin_of "$1" ;;
	esac
}

args_of() {
	case $1 in
	kn-*) knative_args_of "$1" ;;
	etcd)
		printf '%s\n' --name=pgw --data-dir="$STATE/etcd" \
			--listen-client-urls="http://$HOST:$ETCD_CLIENT_PORT" --advertise-client-urls="http://$HOST:$ETCD_CLIENT_PORT" \
			--listen-peer-urls="http://$HOST:$ETCD_PEER_PORT" --initial-advertise-peer-urls="http://$HOST:$ETCD_PEER_PORT" \
			--initial-cluster="pgw=http://$HOST:$ETCD_PEER_PORT" --initial-cluster-state=new \
			--unsafe-no-fsync --log-level=warn --quota-backend-bytes=2147483648
		;;
	apiserver)
		printf '%s\n' --etcd-servers="http://$HOST:$ETCD_CLIENT_PORT" \
			--bind-address=$HOST --secure-port=$APISERVER_PORT \
			--tls-cert-file="$PKI/apiserver.crt" --tls-private-key-file="$PKI/apiserver.key" \
			--client-ca-file="$PKI/ca.crt" \
			--service-account-issuer=https://kubernetes.default.svc.cluster.local \
			--service-account-key-file="$PKI/sa.pub" --service-account-signing-key-file="$PKI/sa.key" \
			--service-cluster-ip-range=10.96.0.0/16 \
			--authorization-mode=Node,RBAC \
			--allow-privileged=true \
			--proxy-client-cert-file="$PKI/apiserver-webhook-client.crt" --proxy-client-key-file="$PKI/apiserver-webhook-client.key" \
			--profiling=false \
			--cert-dir="$STATE/apiserver-certs"
		# pods reach the API server at the node's address (kubernetes.default → node-net); the API server
		# reaches the kubelet there for logs and exec, checking its serving certificate
		if node_enabled; then
			printf '%s\n' --advertise-address=$NODE_IP --endpoint-reconciler-type=lease \
				--kubelet-client-certificate="$PKI/apiserver-kubelet-client.crt" --kubelet-client-key="$PKI/apiserver-kubelet-client.key" \
				--kubelet-certificate-authority="$PKI/ca.crt" --kubelet-preferred-address-types=InternalIP \
				--enable-admission-plugins=PodNodeSelector,PodTolerationRestriction
		else
			printf '%s\n' --advertise-address=$HOST --endpoint-reconciler-type=none
		fi
		;;
	controller-manager)
		# The fault tests stop the API server; the controller-manager's informers can take over a minute after a
		# restart to see the nodes' heartbeats again, and a node then judged NotReady gets its pods marked NotReady,
		# which kwok never undoes (Knative's data-plane Deployments stayed unavailable): 5 minutes of grace.
		printf '%s\n' --kubeconfig="$KCFG_DIR/controller-manager.kubeconfig" \
			--authentication-kubeconfig="$KCFG_DIR/controller-manager.kubeconfig" \
			--authorization-kubeconfig="$KCFG_DIR/controller-manager.kubeconfig" \
			--bind-address=$HOST --secure-port=$CM_PORT --cert-dir="$STATE/controller-manager-certs" \
			--service-account-private-key-file="$PKI/sa.key" --root-ca-file="$PKI/ca.crt" \
			--cluster-signing-cert-file="$PKI/ca.crt" --cluster-signing-key-file="$PKI/ca.key" \
			--use-service-account-credentials=true --leader-elect=false --cluster-name=pgw-local \
			--profiling=false \
			--node-monitor-grace-period=300s
		;;
	scheduler)
		printf '%s\n' --kubeconfig="$KCFG_DIR/scheduler.kubeconfig" \
			--authentication-kubeconfig="$KCFG_DIR/scheduler.kubeconfig" \
			--authorization-kubeconfig="$KCFG_DIR/scheduler.kubeconfig" \
			--bind-address=$HOST --secure-port=$SCHED_PORT --cert-dir="$STATE/scheduler-certs" \
			--leader-elect=false --profiling=false
		;;
	kwok)
		printf '%s\n' --kubeconfig="$KCFG_DIR/kwok.kubeconfig" --config="$KWOK_BIN_DIR/stages.yaml" \
			--manage-all-nodes=false \
			--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake \
			--manage-nodes-with-label-selector= \
			--manage-single-node= \
			--cidr=10.244.0.1/16 --node-ip=10.0.0.1 \
			--node-lease-duration-seconds=40 \
			--server-address="$HOST:$KWOK_PORT"
		;;
	webhook-foo | webhook-bar)
		local gw=${1#webhook-} port dns
		if [ "$gw" = foo ]; then port=$WEBHOOK_FOO_PORT dns=172.16.0.1; else port=$WEBHOOK_BAR_PORT dns=172.16.1.1; fi
		printf '%s\n' --webhook-listen-address="$HOST:$port" \
			--tls-cert-file-path="$PKI/webhook.crt" --tls-key-file-path="$PKI/webhook.key" \
			--gateway="$(gateway_service "$gw")" \
			--DNS="$dns" --DNSPolicy=None \
			--configmapName="$gw-pod-gateway" \
			--setGatewayLabel=setGateway --setGatewayLabelValue="$gw" \
			--setGatewayAnnotation=setGateway --setGatewayAnnotationValue="$gw" \
			--initImage="$POD_GATEWAY_IMAGE" --initImagePullPol=IfNotPresent \
			--initCmd=/bin/client_init.sh --initMountPoint=/config \
			--sidecarImage="$POD_GATEWAY_IMAGE" --sidecarImagePullPol=IfNotPresent \
			--sidecarCmd=/bin/client_sidecar.sh --sidecarMountPoint=/config
		;;
	*) node_args_of "$1" ;;
	esac
}

pid_of() { # prints pid if the component's recorded process is alive and is our binary
	local c=$1 f=$PIDS/$1.pid pid exe
	[ -f "$f" ] || return 1
	pid=$(cat "$f")
	[ -n "$pid" ] && alive "$pid" || return 1
	exe=$(readlink "/proc/$pid/exe" 2>/dev/null) || return 1
	exe=${exe% (deleted)} # its binary replaced on disk since it started (a rebuild, npm ci): still ours
	# our binary, possibly from an older build or another PGW_CACHE_DIR (a rebuild takes effect after
	# down/up or stop/start): the pid file is this cluster's own record, the name guards against pid reuse
	case $exe in
	*/"$(basename "$(bin_of "$c")")") echo "$pid" ;;
	*) return 1 ;;
	esac
}

healthy() {
	local c=$1
	case $c in
	etcd) curl -fsS --max-time 2 "http://$HOST:$ETCD_CLIENT_PORT/health" 2>/dev/null | grep -q '"health":"true"' ;;
	apiserver) curl -fsS --max-time 3 --cacert "$PKI/ca.crt" --cert "$PKI/admin.crt" --key "$PKI/admin.key" "$API_URL/readyz" >/dev/null 2>&1 ;;
	controller-manager) curl -fsSk --max-time 2 "https://$HOST:$CM_PORT/healthz" >/dev/null 2>&1 ;;
	scheduler) curl -fsSk --max-time 2 "https://$HOST:$SCHED_PORT/healthz" >/dev/null 2>&1 ;;
	kwok) curl -fsS --max-time 2 "http://$HOST:$KWOK_PORT/healthz" >/dev/null 2>&1 ;;
	webhook-foo) curl -fsS --max-time 2 --cacert "$PKI/webhook-ca.crt" "https://$HOST:$WEBHOOK_FOO_PORT/wh/health" >/dev/null 2>&1 ;;
	webhook-bar) curl -fsS --max-time 2 --cacert "$PKI/webhook-ca.crt" "https://$HOST:$WEBHOOK_BAR_PORT/wh/health" >/dev/null 2>&1 ;;
	kn-*) knative_healthy "$c" ;;
	*) node_healthy "$c" ;;
	esac
}

wait_healthy() { # component timeout-seconds
	local c=$1 deadline=$((SECONDS + $2))
	until healthy "$c"; do
		if ! pid_of "$c" >/dev/null; then
			tail -n 30 "$LOGS/$c.log" >&2 || true
			die "$c exited during start-up (log: $LOGS/$c.log)"
		fi
		((SECONDS < deadline)) || die "$c not healthy after $2s (log: $LOGS/$c.log)"
		sleep 0.2
	done
}

# launch_component: start the component unless it is running; returns once the process has
# exec'ed (not yet healthy). Sets LAUNCHED=1 when it started a new process.
LAUNCHED=0
# a private mount namespace: as root directly, otherwise inside a user namespace
UNSHARE_MOUNT=-m
[ "$(id -u)" = 0 ] || UNSHARE_MOUNT=-rm
launch_component() { # component
	local c=$1 pid bin
	LAUNCHED=0
	pid_of "$c" >/dev/null && return 0
	if [ -f "$PIDS/$c.pid" ]; then
		log "$c is not running (crashed?); restarting"
	fi
	bin=$(bin_of "$c")
	[ -x "$bin" ] || die "$bin missing; run: npm run cluster -- build"
	local -a args
	mapfile -t args < <(args_of "$c")
	printf '\n==== %s starting %s\n' "$(date -u +%FT%TZ)" "$c" >>"$LOGS/$c.log"
	local -a wrap=()
	case $c in
	# in a private mount namespace, with a webhook pod's resolv.conf and hosts bound over /etc's;
	# unshare and sh exec, so the pid stays the binary's
	webhook-*) wrap=(unshare "$UNSHARE_MOUNT" sh -c 'mount --bind "$1" /etc/resolv.conf && mount --bind "$2" /etc/hosts && shift 2 && exec "$@"' \
		sh "$STATE/webhook-etc/resolv.conf" "$STATE/webhook-etc/hosts-${c#webhook-}") ;;
	# in its network namespace, with its environment (cluster/knative.sh); ip netns and env exec the binary
	kn-*) mapfile -t wrap < <(knative_launcher "$c") ;;
	containerd | echo-host) mapfile -t wrap < <(node_launcher "$c") ;;
	esac
	# close the lock descriptors so the long-running process does not hold the locks
	setsid "${wrap[@]}" "$bin" "${args[@]}" >>"$LOGS/$c.log" 2>&1 </dev/null 8>&- 9>&- &
	pid=$!
	echo "$pid" >"$PIDS/$c.pid"
	# the background child is bash until it has exec'ed the binary: wait for that
	local i
	for i in $(seq 1 100); do
		[ "$(readlink "/proc/$pid/exe" 2>/dev/null)" = "$bin" ] && break
		alive "$pid" || break
		sleep 0.05
	done
	LAUNCHED=1
}

await_component() { # component launched
	local c=$1 timeout=60
	[ "$c" = apiserver ] && timeout=120
	healthy "$c" || wait_healthy "$c" "$timeout"
	[ "$2" = 1 ] && log "$c running (pid $(cat "$PIDS/$c.pid"))"
	return 0
}

start_component() { # component
	launch_component "$1"
	await_component "$1" "$LAUNCHED"
}

# components that only need what already runs: all launched, then each awaited
start_together() { # component...
	local names=("$@") launched=() c i
	for c in "${names[@]}"; do
		launch_component "$c"
		launched+=("$LAUNCHED")
	done
	for i in "${!names[@]}"; do
		await_component "${names[i]}" "${launched[i]}"
	done
}

# alive: exists and is not a zombie waiting for its (re)parent to reap it
alive() {
	local st
	kill -0 "$1" 2>/dev/null || return 1
	st=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
	[ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}

stop_pid() { # pid [grace-seconds]
	local pid=$1 grace=${2:-10} i
	kill -TERM "$pid" 2>/dev/null || return 0
	for i in $(seq 1 $((grace * 20))); do
		alive "$pid" || return 0
		sleep 0.05
	done
	log "pid $pid did not exit within ${grace}s of SIGTERM; sending SIGKILL"
	kill -KILL "$pid" 2>/dev/null || true
	for i in $(seq 1 100); do
		alive "$pid" || return 0
		sleep 0.05
	done
}

# kube-apiserver stops listening at once on SIGTERM but then lingers ~10s over open watch
# connections; 3s is plenty for it to finish its in-flight requests.
# Knative's controllers drain 45 s on SIGTERM; they keep no state worth waiting for.
grace_of() { case $1 in apiserver) echo 3 ;; kn-*) echo 2 ;; *) echo 10 ;; esac; }

stop_component() {
	local c=$1 pid
	bin_of "$c" >/dev/null
	if pid=$(pid_of "$c"); then
		stop_pid "$pid" "$(grace_of "$c")"
		log "$c stopped"
	else
		log "$c was not running"
	fi
	rm -f "$PIDS/$c.pid"
}

# our daemons started with this state dir that lost their pid file (e.g. after a crash of this script)
stray_pids() {
	local p cmd exe
	for p in /proc/[0-9]*; do
		p=${p#/proc/}
		[ "$p" = $$ ] && continue
		exe=$(readlink "/proc/$p/exe" 2>/dev/null) || continue
		case $exe in
		# any build (another PGW_CACHE_DIR too); the state dir in its command line makes it this cluster's
		*/etcd | */kube-apiserver | */kube-controller-manager | */kube-scheduler | */kwok | */gateway-admision-controller) ;;
		*/containerd | */kubelet | */kube-proxy | */coredns) ;;
		*) continue ;;
		esac
		cmd=$(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null) || continue
		case $cmd in
		*"$STATE"/*) echo "$p" ;;
		esac
	done
}

# ---------------------------------------------------------------- bootstrap objects
KUBECTL_BIN() { echo "$K8S_BIN_DIR/kubectl"; }
kc() { "$(KUBECTL_BIN)" --kubeconfig="$KUBECONFIG_PATH" "$@"; }

bootstrap_manifest() {
	local n gw port
	for n in "${NODES[@]}"; do
		cat <<EOF
---
apiVersion: v1
kind: Node
metadata:
  name: $n
  annotations:
    node.alpha.kubernetes.io/ttl: "0"
    kwok.x-k8s.io/node: fake
  labels:
    beta.kubernetes.io/arch: amd64
    beta.kubernetes.io/os: linux
    kubernetes.io/arch: amd64
    kubernetes.io/hostname: $n
    kubernetes.io/os: linux
    kubernetes.io/role: agent
    node-role.kubernetes.io/agent: ""
    type: kwok
status:
  allocatable: {cpu: "32", memory: 256Gi, pods: "110"}
  capacity: {cpu: "32", memory: 256Gi, pods: "110"}
  nodeInfo: {architecture: amd64, kubeletVersion: fake, kubeProxyVersion: fake, operatingSystem: linux}
  phase: Running
EOF
	done
	cat <<EOF
---
apiVersion: v1
kind: Namespace
metadata:
  name: gateways
---
apiVersion: v1
kind: Namespace
metadata:
  name: default
  labels:
    routed-gateway: "true"
EOF
	for gw in foo bar; do
		if [ $gw = foo ]; then port=$WEBHOOK_FOO_PORT; else port=$WEBHOOK_BAR_PORT; fi
		cat <<EOF
---
apiVersion: admissionregistration.k8s.io/v1
kind: MutatingWebhookConfiguration
metadata:
  name: $gw-pod-gateway
  labels:
    app.kubernetes.io/name: pod-gateway
    app.kubernetes.io/instance: $gw
webhooks:
- name: $gw-pod-gateway.svc.cluster.local
  namespaceSelector:
    matchLabels:
      routed-gateway: "true"
  rules:
  - apiGroups: [""]
    apiVersions: ["v1"]
    operations: ["CREATE"]
    resources: ["pods"]
    scope: Namespaced
  clientConfig:
    url: https://$HOST:$port/wh/mutating/setgateway
    caBundle: $(b64 "$PKI/webhook-ca.crt")
  admissionReviewVersions: ["v1", "v1beta1"]
  sideEffects: None
  failurePolicy: Fail
  timeoutSeconds: 5
EOF
	done
}

bootstrap() {
	local -a crds=()
	if knative_enabled && compgen -G "$KNATIVE_CRDS_DIR/serving-*.yaml" >/dev/null; then
		# Eventing's CRDs come from its config/ (knative_up); only Serving's from here
		local f
		for f in "$KNATIVE_CRDS_DIR"/serving-*.yaml; do crds+=(-f "$f"); done
	elif compgen -G "$KNATIVE_CRDS_DIR/*.yaml" >/dev/null; then
		crds=(-f "$KNATIVE_CRDS_DIR")
	else
		log "warning: no Knative CRDs found in $KNATIVE_CRDS_DIR; skipped"
	fi
	bootstrap_manifest | kc apply --server-side --force-conflicts --field-manager=pgw-cluster -f - "${crds[@]}" >/dev/null
	if ((${#crds[@]})); then
		kc wait --for=condition=Established --timeout=60s "${crds[@]}" >/dev/null
	fi
	kc wait --for=condition=Ready --timeout=90s node "${NODES[@]}" >/dev/null
	local deadline=$((SECONDS + 60))
	until kc get serviceaccount default -n default >/dev/null 2>&1; do
		((SECONDS < deadline)) || die "ServiceAccount default/default was not created (controller-manager log: $LOGS/controller-manager.log)"
		sleep 0.3
	done
}

# ---------------------------------------------------------------- commands
print_env() {
	compute_bin_dirs
	cat <<EOF
export KUBECONFIG=$KUBECONFIG_PATH
export KUBE_API_URL=$API_URL
export KUBECTL=$K8S_BIN_DIR/kubectl
export KUBE_CA_FILE=$PKI/ca.crt
export KUBE_CLIENT_CERT_FILE=$PKI/admin.crt
export KUBE_CLIENT_KEY_FILE=$PKI/admin.key
export PGW_CLUSTER_STATE_DIR=$STATE
export PGW_GATEWAY_WEBHOOK_FOO_URL=https://$HOST:$WEBHOOK_FOO_PORT/wh/mutating/setgateway
export PGW_GATEWAY_WEBHOOK_BAR_URL=https://$HOST:$WEBHOOK_BAR_PORT/wh/mutating/setgateway
export PGW_GATEWAY_WEBHOOK_CA_FILE=$PKI/webhook-ca.crt
export CLOUDEVENTS_CLI=$CE_BIN_DIR/cloudevents
EOF
	knative_env
	node_env
	images_env
}

state_lock() {
	mkdir -p "$STATE"
	exec 9>"$STATE/.cluster.lock"
	flock 9
}

cmd_up() {
	local t0=$SECONDS
	build_all
	state_lock
	ensure_config
	node_enabled && node_config
	# etcd, then the apiserver; the rest only need the apiserver and start side by side
	start_component etcd
	start_component apiserver
	start_together webhook-foo webhook-bar controller-manager scheduler kwok
	bootstrap
	node_up
	serving_up
	knative_up
	serving_wait
	log "cluster up in $((SECONDS - t0))s: $API_URL (kubeconfig $KUBECONFIG_PATH)"
}

cmd_down() {
	compute_bin_dirs
	state_lock
	local i c pid
	for ((i = ${#COMPONENTS[@]} - 1; i >= 0; i--)); do
		c=${COMPONENTS[i]}
		if pid=$(pid_of "$c"); then
			stop_pid "$pid" "$(grace_of "$c")"
			log "$c stopped"
		fi
		rm -f "$PIDS/$c.pid"
	done
	for pid in $(stray_pids | sort -rn); do
		log "stopping stray process $pid"
		stop_pid "$pid"
	done
	knative_down
	node_down
	# fresh etcd data next time; certificates stay cached
	rm -rf "$STATE/etcd"
	log "cluster down"
}

cmd_status() {
	compute_bin_dirs
	local c pid rc=0 state
	for c in "${COMPONENTS[@]}"; do
		if pid=$(pid_of "$c"); then
			if healthy "$c"; then state="running (pid $pid)"; else
				state="unhealthy (pid $pid)"
				rc=3
			fi
		elif [ -f "$PIDS/$c.pid" ]; then
			state="crashed (see $LOGS/$c.log)"
			rc=3
		else
			state="stopped"
			rc=3
		fi
		printf '%-24s %s\n' "$c" "$state"
	done
	return $rc
}

usage() {
	cat >&2 <<EOF
usage: npm run cluster -- <command>
  up                 build (cached) and start everything; no-op when already up, restarts crashed parts
  down               stop every process and drop the etcd data (certificates stay cached)
  env                print sourceable environment (KUBECONFIG, KUBE_API_URL, KUBECTL, ...)
  status             show each component; exit 3 when one is not running
  build              only build the binaries
  stop <component>   stop one component (${COMPONENTS[*]})
  start <component>  start one stopped component
  logs <component>   print the log file path of a component
EOF
}

main() {
	local cmd=${1:-}
	shift || true
	case $cmd in
	up) cmd_up ;;
	down) cmd_down ;;
	env) print_env ;;
	status) cmd_status ;;
	build) build_all ;;
	stop)
		[ $# = 1 ] || die "usage: stop <component>"
		compute_bin_dirs
		state_lock
		stop_component "$1"
		;;
	start)
		[ $# = 1 ] || die "usage: start <component>"
		compute_bin_dirs
		bin_of "$1" >/dev/null
		state_lock
		ensure_config
		start_component "$1"
		;;
	logs)
		[ $# = 1 ] || die "usage: logs <component>"
		compute_bin_dirs
		bin_of "$1" >/dev/null
		echo "$LOGS/$1.log"
		;;
	-h | --help | help) usage ;;
	*)
		usage
		exit 2
		;;
	esac
}

main "$@"
