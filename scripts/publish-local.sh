#!/usr/bin/env bash
# Build the container image (no daemon, no base image to pull) and push it to
# the local OCI registry at 127.0.0.1:5001, starting that registry if needed.
#
#   scripts/publish-local.sh            # npm run build, buildah bud, push :<git short sha> and :latest
#   SKIP_BUILD=1 scripts/publish-local.sh   # reuse dist/ as it is
#   scripts/publish-local.sh --registry-only  # just make sure the registry runs
#
# Needs (installed with apt-get when missing and running as root): buildah,
# skopeo, docker-registry, ca-certificates.
#
# Registry: Debian's docker-registry (distribution), listening on 127.0.0.1:5001,
# blobs in <repo>/.cache/registry, config + log + pid in <repo>/.cache/registry-run.
# It keeps running after this script; stop it with:
#   kill "$(cat .cache/registry-run/registry.pid)"
# Buildah storage is kept in <repo>/.cache/containers (vfs driver, chroot
# isolation: works as root without a daemon, overlay or user namespaces).
#
# Prints the pushed references; also writes them to .cache/publish-local.env:
#   IMAGE=127.0.0.1:5001/podgateway-provisioner:<sha>  IMAGE_LATEST=...  IMAGE_DIGEST=sha256:...
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

REGISTRY=${REGISTRY:-127.0.0.1:5001}
NAME=podgateway-provisioner
CACHE="$ROOT/.cache"
REG_DATA="$CACHE/registry"
REG_RUN="$CACHE/registry-run"
STORE=(--root "$CACHE/containers/storage" --runroot "$CACHE/containers/run" --storage-driver vfs)

log() { printf '[publish-local] %s\n' "$*" >&2; }
die() { printf '[publish-local] error: %s\n' "$*" >&2; exit 1; }

REGISTRY_ONLY=0
case "${1:-}" in
  --registry-only) REGISTRY_ONLY=1 ;;
  "") ;;
  -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
  *) die "unknown argument: $1" ;;
esac

# --- prerequisites -------------------------------------------------------------------
need=()
command -v buildah >/dev/null || need+=(buildah)
command -v skopeo >/dev/null || need+=(skopeo)
command -v docker-registry >/dev/null || need+=(docker-registry)
[ -s /etc/ssl/certs/ca-certificates.crt ] || need+=(ca-certificates)
command -v curl >/dev/null || need+=(curl)
if [ ${#need[@]} -gt 0 ]; then
  [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null || die "missing: ${need[*]} (install them, e.g. apt-get install ${need[*]})"
  log "installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq --no-install-recommends "${need[@]}" >&2
fi

# --- the local registry ------------------------------------------------------------------
registry_up() { curl -fsS -o /dev/null --max-time 2 "http://$REGISTRY/v2/"; }

start_registry() {
  registry_up && { log "registry already answers at $REGISTRY"; return; }
  mkdir -p "$REG_DATA" "$REG_RUN"
  cat > "$REG_RUN/config.yml" <<EOF
version: 0.1
log:
  level: info
  formatter: text
storage:
  filesystem:
    rootdirectory: $REG_DATA
  delete:
    enabled: true
http:
  addr: $REGISTRY
  headers:
    X-Content-Type-Options: [nosniff]
EOF
  log "starting docker-registry on $REGISTRY (data: $REG_DATA, log: $REG_RUN/registry.log)"
  # setsid + nohup: the registry outlives this script (and the test that ran it).
  setsid nohup docker-registry serve "$REG_RUN/config.yml" >>"$REG_RUN/registry.log" 2>&1 < /dev/null &
  echo $! > "$REG_RUN/registry.pid"
  for _ in $(seq 1 100); do
    registry_up && { log "registry up (pid $(cat "$REG_RUN/registry.pid"))"; return; }
    kill -0 "$(cat "$REG_RUN/registry.pid")" 2>/dev/null || { tail -20 "$REG_RUN/registry.log" >&2; die "docker-registry exited"; }
    sleep 0.1
  done
  die "registry did not answer on http://$REGISTRY/v2/ within 10 s (log: $REG_RUN/registry.log)"
}

start_registry
[ "$REGISTRY_ONLY" = 1 ] && exit 0

# --- build --------------------------------------------------------------------------------
if [ "${SKIP_BUILD:-0}" != 1 ]; then
  bash scripts/build.sh
fi
[ -x dist/$NAME ] && [ -d dist/rootfs ] || die "dist/$NAME or dist/rootfs missing: run npm run build"

SHA=$(git rev-parse --short HEAD 2>/dev/null || echo dev)
LOCAL="localhost/$NAME:$SHA"
IMAGE="$REGISTRY/$NAME:$SHA"
IMAGE_LATEST="$REGISTRY/$NAME:latest"

log "buildah bud -> $LOCAL"
buildah "${STORE[@]}" bud \
  --isolation chroot \
  --format oci \
  --pull=false \
  --build-arg VERSION="$SHA" \
  -f Dockerfile \
  -t "$LOCAL" \
  . >&2

# --- push -----------------------------------------------------------------------------------
mkdir -p "$CACHE"
digestfile="$CACHE/publish-local.digest"
for ref in "$IMAGE" "$IMAGE_LATEST"; do
  log "push $ref"
  buildah "${STORE[@]}" push --tls-verify=false --digestfile "$digestfile" "$LOCAL" "docker://$ref" >&2
done
DIGEST=$(cat "$digestfile")

# The registry now has it; drop the local copy so vfs storage does not grow per build.
buildah "${STORE[@]}" rmi "$LOCAL" >/dev/null 2>&1 || true

size=$(skopeo inspect --tls-verify=false --raw "docker://$IMAGE" |
  "$ROOT/node_modules/.bin/node" -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const m=JSON.parse(s);console.log(m.layers.reduce((a,l)=>a+l.size,0))})' 2>/dev/null || echo "?")

cat > "$CACHE/publish-local.env" <<EOF
IMAGE=$IMAGE
IMAGE_LATEST=$IMAGE_LATEST
IMAGE_DIGEST=$DIGEST
IMAGE_COMPRESSED_BYTES=$size
EOF
log "pushed $IMAGE and $IMAGE_LATEST ($DIGEST, compressed layers: $size bytes)"
printf '%s\n%s\n' "$IMAGE" "$IMAGE_LATEST"
