# Container images for a real node (kubelet + containerd pull them from the local registry), sourced by
# cluster.sh after ROOT/CACHE/BIN_ROOT/VENDOR are set (uses its log/die). Built offline from the Debian
# mirror (debootstrap), the vendored pod-gateway tree and the Kubernetes module cache (pause.c), assembled
# with buildah (vfs storage in $CACHE/containers, no daemon) and pushed to 127.0.0.1:5001. See
# cluster/README.md "Images".
#
#   bash cluster/images.sh build   # build what changed, push; a no-op when the registry has it
#   bash cluster/images.sh env     # export PGW_IMAGE_<NAME>=<ref> lines

if [ "${BASH_SOURCE[0]}" = "$0" ]; then # run directly: what cluster.sh would have set
	set -euo pipefail
	ROOT=$(cd -P "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
	CACHE=$(mkdir -p "${PGW_CACHE_DIR:-$ROOT/.cache}" && cd -P "${PGW_CACHE_DIR:-$ROOT/.cache}" && pwd)
	BIN_ROOT=$CACHE/bin
	VENDOR=${PGW_VENDOR_DIR:-$ROOT/../shared/vendor}
	K8S_VERSION=$(sed -n 's/^K8S_VERSION=//p' "$ROOT/cluster/cluster.sh")
	log() { printf '[images] %s\n' "$*" >&2; }
	die() { printf '[images] error: %s\n' "$*" >&2; exit 1; }
fi

IMAGES=(pod-gateway client pause)
# images of one Go binary each, FROM scratch (name -> binary path): registered by who needs them (serving.sh)
declare -A IMAGES_BINARY=()
IMAGES_REGISTRY=127.0.0.1:5001
IMAGES_DIR=$CACHE/images # build stamps (<name>-<key>.digest), debootstrap's package cache, build logs
IMAGES_STORE=(--root "$CACHE/containers/storage" --runroot "$CACHE/containers/run" --storage-driver vfs)
IMAGES_SUITE=bookworm
IMAGES_MIRROR=${PGW_DEBIAN_MIRROR:-http://deb.debian.org/debian}
IMAGES_POD_GATEWAY_SRC=$VENDOR/pod-gateway
IMAGES_POD_GATEWAY_VERSION=v1.13.0
IMAGES_PAUSE_TAGS=(3.10.1 3.10.2) # the node's sandbox image; the version build/pause/Makefile and kubeadm v1.36 name
IMAGES_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

# repository (in the registry) and tags of each image; the first tag is the one checked and printed
images_repo_of() {
	case $1 in
	pod-gateway) echo angelnu/pod-gateway ;;
	client) echo podgateway/client ;;
	pause) echo pause ;;
	envoy) echo envoyproxy/envoy ;;
	cloudevents-player) echo podgateway/cloudevents-player ;;
	*) [ -n "${IMAGES_BINARY[$1]:-}" ] || die "unknown image '$1'"
		echo "knative/$1" ;;
	esac
}
images_tags_of() { # name key
	case $1 in
	pod-gateway) echo "$IMAGES_POD_GATEWAY_VERSION" ;;
	client | cloudevents-player) echo "$2 latest" ;;
	pause) echo "${IMAGES_PAUSE_TAGS[*]}" ;;
	envoy) echo "$ENVOY_VERSION-$2" ;;
	*) echo "$2" ;;
	esac
}
# the reference pods name: the first tag
images_ref() { # name
	local tags
	read -r -a tags <<<"$(images_tags_of "$1" "$(images_key_of "$1")")"
	echo "$IMAGES_REGISTRY/$(images_repo_of "$1"):${tags[0]}"
}

# ---------------------------------------------------------------- keys
# hash of the recipe (function text) and of every input file, like cluster.sh's tree_key (without Go)
images_key() { # extra-string path...
	local extra=$1 p
	shift
	{
		for p in "$@"; do
			if [ -d "$p" ]; then
				(cd "$p" && find . -type f ! -path './.git/*' -print0 | LC_ALL=C sort -z | xargs -0 sha256sum)
			elif [ -f "$p" ]; then sha256sum <"$p"; fi
		done
		printf '%s\n' "$extra"
	} | sha256sum | cut -c1-12
}

images_pause_src() { # prints the path of Kubernetes' build/pause/linux/pause.c, downloading the module if needed
	local mod
	mod=$(go env GOMODCACHE)/k8s.io/kubernetes@$K8S_VERSION
	if [ ! -f "$mod/build/pause/linux/pause.c" ]; then
		log "downloading k8s.io/kubernetes@$K8S_VERSION for build/pause/linux/pause.c"
		(cd "$ROOT/cluster/build/kubernetes" && go mod download "k8s.io/kubernetes@$K8S_VERSION") >&2
	fi
	[ -f "$mod/build/pause/linux/pause.c" ] || die "no build/pause/linux/pause.c in $mod"
	echo "$mod/build/pause/linux/pause.c"
}

images_key_of() {
	local common
	common="$(declare -f images_commit images_config_of) $IMAGES_SUITE amd64"
	case $1 in
	pod-gateway) images_key "$common $(declare -f images_root_pod_gateway images_debootstrap images_slim)" \
		"$IMAGES_POD_GATEWAY_SRC" ;;
	client) images_key "$common $(declare -f images_root_client images_debootstrap)" ;;
	pause) images_key "$common $(declare -f images_root_pause) $(gcc -dumpfullversion 2>/dev/null)" "$(images_pause_src)" ;;
	envoy) images_key "$common $(declare -f images_root_envoy images_root_client images_debootstrap) $ENVOY_VERSION" ;;
	# the application's build directory is named after its build key (player.sh)
	cloudevents-player) images_key "$common $(declare -f images_root_cloudevents_player images_debootstrap images_slim) $PLAYER_BIN_DIR" ;;
	# the binary's build directory is named after its build key: no need to hash the binary itself
	*) images_key "$common $(declare -f images_root_binary) $1 ${IMAGES_BINARY[$1]}" ;;
	esac
}

# ---------------------------------------------------------------- roots
images_debootstrap() { # dir comma-separated-packages
	mkdir -p "$IMAGES_DIR/debs"
	# minbase: Essential packages + apt; --cache-dir keeps the downloaded .debs for the next build
	debootstrap --variant=minbase --arch=amd64 --include="$2" --cache-dir="$IMAGES_DIR/debs" \
		"$IMAGES_SUITE" "$1" "$IMAGES_MIRROR" >>"$IMAGES_LOG" 2>&1 ||
		{ tail -20 "$IMAGES_LOG" >&2; die "debootstrap failed (log: $IMAGES_LOG)"; }
}

images_slim() { # root: no apt lists/caches, docs (copyright files stay), man pages, locales, logs
	local r=$1
	rm -rf "$r"/var/cache/apt/* "$r"/var/lib/apt/lists/* "$r"/var/cache/debconf/*-old "$r"/var/lib/dpkg/*-old \
		"$r"/usr/share/man/* "$r"/usr/share/info/* "$r"/usr/share/locale/* "$r"/usr/share/lintian "$r"/var/log/*
	find "$r/usr/share/doc" -mindepth 1 ! -type d ! -name copyright -delete
	find "$r/usr/share/doc" -mindepth 1 -type d -empty -delete
	rm -f "$r/etc/hostname" "$r/etc/resolv.conf" # the kubelet mounts its own
}

# pod-gateway as upstream's Dockerfile makes it (there: Alpine + apk), on Debian: the packages its bin/*.sh
# call, then config/ -> /default_config and /config, bin/* -> /bin/.
images_root_pod_gateway() { # root
	local r=$1 src=$IMAGES_POD_GATEWAY_SRC
	[ -f "$src/Dockerfile" ] && [ -d "$src/bin" ] && [ -d "$src/config" ] ||
		die "$src missing: the vendored pod-gateway sources (../shared/vendor/pod-gateway, or set PGW_VENDOR_DIR)"
	images_debootstrap "$r" bash,iproute2,dnsmasq-base,bind9-dnsutils,iptables,inotify-tools,busybox,udhcpc,psmisc,procps,iputils-ping,coreutils,hostname
	# the scripts call /sbin/ip (iproute2 links it there)
	[ -e "$r/usr/sbin/ip" ] || die "no /sbin/ip in the pod-gateway root"
	# client_init.sh: `route add default gw` (Alpine's busybox applet; Debian's busybox has no links)
	[ -e "$r/usr/sbin/route" ] || ln -s /bin/busybox "$r/usr/sbin/route"
	# gateway_sidecar.sh: `inotifyd PROG FILE:ce` (Debian's busybox has no inotifyd applet)
	cat >"$r/usr/local/bin/inotifyd" <<'EOF'
#!/bin/bash
# inotifyd PROG FILE[:MASK]... : busybox inotifyd's calling convention over inotify-tools' inotifywait.
# On each event runs PROG EVENTS FILE [SUBFILE] (PROG "-": prints them). Mask letters as busybox's:
# a access, c modify, e attrib, w close_write, 0 close_nowrite, r open, D delete_self, M move_self,
# u unmount, o watch removed, x overflow, n create, d delete, m moved_from, y moved_to; none = all.
set -u
if [ $# -lt 2 ]; then
	echo "Usage: inotifyd PROG FILE1[:MASK]..." >&2
	exit 1
fi
prog=$1
shift
declare -A ev_of=([a]=access [c]=modify [e]=attrib [w]=close_write [0]=close_nowrite [r]=open [D]=delete_self
	[M]=move_self [u]=unmount [n]=create [d]=delete [m]=moved_from [y]=moved_to)
declare -A letter_of=([ACCESS]=a [MODIFY]=c [ATTRIB]=e [CLOSE_WRITE]=w [CLOSE_NOWRITE]=0 [OPEN]=r
	[DELETE_SELF]=D [MOVE_SELF]=M [UNMOUNT]=u [IGNORED]=o [Q_OVERFLOW]=x [CREATE]=n [DELETE]=d
	[MOVED_FROM]=m [MOVED_TO]=y)
declare -A mask_of=()
files=() events=() all=0
for arg in "$@"; do
	file=${arg%:*} mask=${arg##*:}
	[ "$file" = "$arg" ] && mask=""
	files+=("$file")
	mask_of[$file]=${mask:-acew0rDMuoxndmy}
	[ -z "$mask" ] && all=1
	for ((i = 0; i < ${#mask}; i++)); do
		[ -n "${ev_of[${mask:i:1}]:-}" ] && events+=(-e "${ev_of[${mask:i:1}]}")
	done
done
((all)) && events=()
exec {in}< <(exec inotifywait -m -q --format $'%e\t%w\t%f' "${events[@]}" -- "${files[@]}")
pid=$!
trap 'kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; exit 0' TERM INT
while IFS=$'\t' read -r evs file sub <&"$in"; do
	letters=""
	for ev in ${evs//,/ }; do
		l=${letter_of[$ev]:-}
		[ -n "$l" ] && [[ ${mask_of[$file]:-$l} == *"$l"* ]] && letters+=$l
	done
	[ -n "$letters" ] || continue
	if [ "$prog" = - ]; then
		printf '%s\t%s%s\n' "$letters" "$file" "${sub:+$'\t'$sub}"
	else
		"$prog" "$letters" "$file" ${sub:+"$sub"}
	fi
done
wait "$pid"
EOF
	chmod 0755 "$r/usr/local/bin/inotifyd"
	# Alpine's dnsmasq reads /etc/dnsmasq.d/*.conf (gateway_sidecar.sh writes pod-gateway.conf there);
	# Debian's dnsmasq-base ships no /etc/dnsmasq.conf
	mkdir -p "$r/etc/dnsmasq.d" "$r/usr/share/dnsmasq"
	printf '%s\n' 'conf-dir=/etc/dnsmasq.d/,*.conf' >"$r/etc/dnsmasq.conf"
	# DNSSEC: the script names Alpine's path of the trust anchors
	ln -s ../dnsmasq-base/trust-anchors.conf "$r/usr/share/dnsmasq/trust-anchors.conf"
	# udhcpc (busybox) runs /etc/udhcpc/default.script (the udhcpc package): address, default route, resolv.conf
	[ -x "$r/etc/udhcpc/default.script" ] || die "udhcpc's /etc/udhcpc/default.script missing"
	# COPY config /default_config; COPY config /config; COPY bin /bin (modes as in a git checkout:
	# the vendored tree is read-only)
	cp -R "$src/config" "$r/default_config"
	cp -R "$src/config" "$r/config"
	cp -R "$src/bin/." "$r/usr/bin/"
	chmod -R u+w,go-w "$r/default_config" "$r/config"
	(cd "$src/bin" && find . -type f -printf '%P\n') | while read -r f; do chmod u+w,go-w "$r/usr/bin/$f"; done
	images_slim "$r"
}

# client pods: sh, sleep (busybox, with all its applets) and curl, with just the libraries they load, taken
# from a throw-away Debian root; runs as 65532 on a read-only root (nothing writes outside /tmp). Any further
# binary given is added in /usr/local/bin, with the libraries it loads.
images_root_client() { # root [binary...]
	local r=$1 stage=$1.stage f files extra=()
	shift
	images_debootstrap "$stage" busybox,curl,ca-certificates
	for f in "$@"; do
		install -D -m 0755 "$f" "$stage/usr/local/bin/${f##*/}"
		extra+=("usr/local/bin/${f##*/}")
	done
	mkdir -p "$r"/usr/bin "$r"/usr/lib "$r"/usr/lib64 "$r"/etc "$r"/home/nonroot "$r"/tmp
	ln -s usr/bin "$r/bin"
	ln -s usr/lib "$r/lib"
	ln -s usr/lib64 "$r/lib64"
	files=$(chroot "$stage" ldd /usr/bin/busybox /usr/bin/curl "${extra[@]/#//}" |
		awk '$2 == "=>" && $3 ~ /^\// { print substr($3, 2) } $1 ~ /^\/.*[^:]$/ { print substr($1, 2) }' | sort -u)
	# resolved inside the stage (its symlinks are absolute), stored dereferenced at the paths ldd names
	# shellcheck disable=SC2086
	chroot "$stage" tar -C / -chf - usr/bin/busybox usr/bin/curl "${extra[@]}" etc/ssl/certs/ca-certificates.crt $files |
		tar -C "$r" -xf - --keep-directory-symlink
	for f in $(chroot "$r" /usr/bin/busybox --list); do
		[ -e "$r/usr/bin/$f" ] || ln -s busybox "$r/usr/bin/$f"
	done
	printf '%s\n' 'root:x:0:0:root:/root:/bin/sh' 'nonroot:x:65532:65532:nonroot:/home/nonroot:/bin/sh' >"$r/etc/passwd"
	printf '%s\n' 'root:x:0:' 'nonroot:x:65532:' >"$r/etc/group"
	printf '%s\n' 'passwd: files' 'group: files' 'hosts: files dns' >"$r/etc/nsswitch.conf"
	chown 65532:65532 "$r/home/nonroot"
	chmod 1777 "$r/tmp"
	rm -rf "$stage"
}

# Kourier's gateway: the official Envoy (glibc) at the path Kourier's Deployment runs, with sh and curl for its
# preStop hook (drain the listeners)
images_root_envoy() { # root
	images_root_client "$1" "$ENVOY_BIN_DIR/envoy"
}

# one static Go binary at /ko-app/<command>, where ko (Knative's image builder) puts it
images_root_binary() { # root name
	install -D -m 0755 "${IMAGES_BINARY[$2]}" "$1/ko-app/$(basename "${IMAGES_BINARY[$2]}")"
}

# Kubernetes' own pause (build/pause/linux/pause.c of the k8s.io/kubernetes module), static, as its Makefile
# builds it; FROM scratch.
images_root_pause() { # root
	local r=$1 src mk tag
	src=$(images_pause_src)
	mk=$(dirname "$(dirname "$src")")/Makefile
	tag=$(sed -n 's/^TAG ?= *//p' "$mk" 2>/dev/null)
	mkdir -p "$r"
	gcc -Os -Wall -Werror -static -s -DVERSION="v${tag:-unknown}-k8s-$K8S_VERSION" -o "$r/pause" "$src" >&2
}

# ---------------------------------------------------------------- assemble, push
images_config_of() { # name key: buildah config arguments, one a line
	local src=https://github.com/angelnu/pod-gateway
	printf '%s\n' --os linux --arch amd64 --label "io.podgateway.image.key=$2"
	case $1 in
	pod-gateway) printf '%s\n' --env "PATH=$IMAGES_PATH" --workingdir / --cmd '["/bin/entry.sh"]' \
		--label "org.opencontainers.image.source=$src" --label "org.opencontainers.image.version=$IMAGES_POD_GATEWAY_VERSION" ;;
	client) printf '%s\n' --env PATH=/usr/bin:/bin --env HOME=/home/nonroot --workingdir / --user 65532:65532 \
		--cmd '["sleep","infinity"]' ;;
	pause) printf '%s\n' --user 65535:65535 --entrypoint '["/pause"]' ;;
	envoy) printf '%s\n' --env PATH=/usr/local/bin:/usr/bin:/bin --workingdir / --user 65534:65534 ;;
	# as upstream's Dockerfile.jvm runs it
	cloudevents-player) printf '%s\n' --env "PATH=$IMAGES_PATH" --workingdir /deployments --user 65532:65532 --entrypoint \
		'["java","-Dquarkus.http.host=0.0.0.0","-Djava.util.logging.manager=org.jboss.logmanager.LogManager","-jar","/deployments/quarkus-run.jar"]' ;;
	*) printf '%s\n' --user 65532:65532 --entrypoint "[\"/ko-app/$(basename "${IMAGES_BINARY[$1]}")\"]" ;;
	esac
}

# one layer (the root, owners and modes as they are), image config, push every tag, drop the local copy
images_commit() { # name key root
	local name=$1 key=$2 root=$3 ctr mnt local_ref tag repo digest cfg=()
	repo=$(images_repo_of "$name")
	local_ref=localhost/pgw-images-$name:$key
	ctr=$(buildah "${IMAGES_STORE[@]}" from --name "pgw-images-$name-$$" scratch)
	mnt=$(buildah "${IMAGES_STORE[@]}" mount "$ctr")
	cp -a "$root/." "$mnt/"
	buildah "${IMAGES_STORE[@]}" umount "$ctr" >/dev/null
	mapfile -t cfg < <(images_config_of "$name" "$key")
	buildah "${IMAGES_STORE[@]}" config "${cfg[@]}" "$ctr"
	buildah "${IMAGES_STORE[@]}" commit --quiet --format oci --rm "$ctr" "$local_ref" >/dev/null
	for tag in $(images_tags_of "$name" "$key"); do
		buildah "${IMAGES_STORE[@]}" push --quiet --tls-verify=false --digestfile "$IMAGES_DIR/.digest" \
			"$local_ref" "docker://$IMAGES_REGISTRY/$repo:$tag" >&2
	done
	digest=$(cat "$IMAGES_DIR/.digest")
	buildah "${IMAGES_STORE[@]}" rmi "$local_ref" >/dev/null 2>&1 || true
	echo "$digest" >"$IMAGES_DIR/$name-$key.digest"
}

images_remote_digest() { # repo tag: the digest the registry has for it, or nothing
	curl -fsS -I --max-time 5 -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
		-H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
		"http://$IMAGES_REGISTRY/v2/$1/manifests/$2" 2>/dev/null |
		tr -d '\r' | awk -F': ' 'tolower($1) == "docker-content-digest" { print $2 }'
}

images_build_one() { # name
	local name=$1 key repo tags stamp tmp t0=$SECONDS
	key=$(images_key_of "$name")
	repo=$(images_repo_of "$name")
	read -r -a tags <<<"$(images_tags_of "$name" "$key")"
	stamp=$IMAGES_DIR/$name-$key.digest
	if [ -s "$stamp" ] && [ "$(images_remote_digest "$repo" "${tags[0]}")" = "$(cat "$stamp")" ]; then
		return 0
	fi
	IMAGES_LOG=$IMAGES_DIR/$name-$key.log
	: >"$IMAGES_LOG"
	log "building image $name ($IMAGES_REGISTRY/$repo:${tags[0]}, key $key; log: $IMAGES_LOG)"
	tmp=$IMAGES_DIR/tmp/$name.$$
	rm -rf "$tmp"
	mkdir -p "$tmp"
	if [ -n "${IMAGES_BINARY[$name]:-}" ]; then images_root_binary "$tmp/root" "$name"; else "images_root_${name//-/_}" "$tmp/root"; fi
	images_commit "$name" "$key" "$tmp/root"
	rm -rf "$tmp"
	log "pushed $name in $((SECONDS - t0))s: ${tags[*]/#/$IMAGES_REGISTRY/$repo:} ($(cat "$stamp"))"
}

images_prereqs() {
	local need=()
	command -v buildah >/dev/null || need+=(buildah)
	command -v debootstrap >/dev/null || need+=(debootstrap)
	command -v gcc >/dev/null || need+=(gcc)
	[ -f /usr/lib/x86_64-linux-gnu/libc.a ] || need+=(libc6-dev)
	command -v curl >/dev/null || need+=(curl)
	((${#need[@]} == 0)) && return 0
	[ "$(id -u)" = 0 ] || die "missing: ${need[*]} (apt-get install ${need[*]})"
	log "installing ${need[*]}"
	apt-get update -qq >&2
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >&2
}

images_registry() { # the local registry answers, started by scripts/publish-local.sh if not
	curl -fsS -o /dev/null --max-time 2 "http://$IMAGES_REGISTRY/v2/" 2>/dev/null && return 0
	bash "$ROOT/scripts/publish-local.sh" --registry-only || die "the local registry at $IMAGES_REGISTRY does not start"
}

# Build every image whose key changed (or that the registry lost) and push it; fast when nothing did.
images_build_all() {
	local name
	[ "$(id -u)" = 0 ] || die "building images needs root (debootstrap, chroot, buildah with vfs)"
	images_prereqs
	images_registry
	mkdir -p "$IMAGES_DIR"
	exec 7>"$IMAGES_DIR/.lock"
	flock 7
	rm -rf "$IMAGES_DIR/tmp" # roots left by an interrupted build
	for name in "${IMAGES[@]}"; do
		images_build_one "$name"
	done
	flock -u 7
}

# export PGW_IMAGE_<NAME>=<ref> (the registry's names; containerd on the node maps ghcr.io/..., registry.k8s.io/...
# onto the same paths)
images_env() {
	local name var
	for name in "${IMAGES[@]}"; do
		var=${name//-/_}
		echo "export PGW_IMAGE_${var^^}=$(images_ref "$name")"
	done
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
	case ${1:-} in
	build) images_build_all ;;
	env) images_env ;;
	*)
		echo "usage: bash cluster/images.sh build|env" >&2
		exit 2
		;;
	esac
fi
