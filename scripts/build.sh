#!/usr/bin/env bash
# Build ONE self-contained executable of the service and the minimal root
# filesystem the container image needs next to it.
#
#   scripts/build.sh                 # bun build --compile (default, what the image ships)
#   scripts/build.sh --runtime sea   # Node 24 single executable application instead
#   scripts/build.sh --measure       # build both into dist/measure/ and print
#                                    # cold start / size / idle RSS (numbers in deploy/README.md)
#
# Outputs (all under dist/, which is git-ignored):
#   dist/podgateway-provisioner      the executable (dynamically linked against glibc)
#   dist/rootfs/                     what the FROM-scratch image copies to / besides it:
#                                    ELF loader + shared libraries (from ldd), CA bundle,
#                                    /etc/passwd + /etc/group entries for 65532
#   dist/build-info.txt              runtime, versions, ldd output, sizes
#
# Environment:
#   ENTRY    entry module (default: src/main/bun.ts for bun, src/main/node.ts for sea)
#   OUT_DIR  output directory (default: dist)
#   MEASURE_RUNS  runs per candidate for --measure (default: 20)
#   JIT_POLICY    bun: the executable's JIT tier-up threshold scale (default: 4; 1 = Bun's normal)
#
# Works offline for the default (bun) runtime: the npm package `bun` carries the
# runtime that --compile embeds. The SEA runtime needs `postject` from the npm
# registry (fetched once into the npm cache via `npm exec`).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

RUNTIME=bun
MEASURE=0
while [ $# -gt 0 ]; do
  case "$1" in
    --runtime) RUNTIME=$2; shift 2 ;;
    --runtime=*) RUNTIME=${1#*=}; shift ;;
    --measure) MEASURE=1; shift ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) echo "build.sh: unknown argument: $1" >&2; exit 2 ;;
  esac
done

if [ "$RUNTIME" = bun ]; then ENTRY=${ENTRY:-src/main/bun.ts}; else ENTRY=${ENTRY:-src/main/node.ts}; fi
OUT_DIR=${OUT_DIR:-dist}
JIT_POLICY=${JIT_POLICY:-4}
NAME=podgateway-provisioner
BIN_DIR="$ROOT/node_modules/.bin"
NODE="$BIN_DIR/node"
BUN="$BIN_DIR/bun"
POSTJECT_PKG=postject@1.0.0-alpha.6
# The fuse string Node's SEA support looks for (documented in Node's single-executable-applications doc).
SEA_FUSE=NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2

log() { printf '[build] %s\n' "$*" >&2; }
die() { printf '[build] error: %s\n' "$*" >&2; exit 1; }

[ -x "$NODE" ] && [ -x "$BUN" ] || die "node_modules/.bin/{node,bun} missing: run 'npm ci' first"
[ -f "$ENTRY" ] || die "entry $ENTRY does not exist (set ENTRY=... to build another file)"

# --- the two candidate builds --------------------------------------------------

# bun build --compile, in two steps:
#  1. bundle the entry into one ESM file. The entry (src/main/bun.ts) serves with Bun.serve and calls the API
#     server with Bun's own fetch; undici must not be in the bundle: for target bun, the bundler leaves
#     `undici` to Bun's built-in stand-in, whose fetch ignores an undici Agent's TLS options (ca/cert/key),
#     so the Kubernetes client could not verify or authenticate to the API server.
#  2. compile that file into the executable: bytecode, minified, config only from the environment.
build_bun() { # <out>
  local out=$1 work
  work=$(mktemp -d "${TMPDIR:-/tmp}/bun.XXXXXX")
  "$BUN" build "$ENTRY" --target=bun --format=esm --sourcemap=none --outfile "$work/main.mjs" >&2
  if grep -qE '(from|import)[[:space:]]*"undici"|require\("undici"\)' "$work/main.mjs"; then
    die "the bundle still imports undici by name: Bun would substitute its built-in undici (no TLS options)"
  fi
  # --compile-executable-path: use the runtime from the npm package, never download one.
  # --no-compile-autoload-*: configuration comes from the environment only, not from
  #   a .env / bunfig.toml that happens to sit in the working directory.
  # --bytecode: precompiled bytecode, measured faster cold start (see deploy/README.md);
  #   --format=esm because with --bytecode bun defaults to cjs, and the entry uses top-level await.
  # --sourcemap: embedded; stack traces name lines of the step-1 bundle.
  # --compile-jit-policy: JavaScriptCore's tier-up thresholds scaled up (×JIT_POLICY): a pod that Knative has just
  #   started serves its first hundreds of events before the JIT pays off, and compiling hot functions early cost it
  #   more CPU per event than it saved (bench: fresh processes); a long-running process loses a few per cent at most.
  # NOTE: do not `strip` the result: that drops the embedded module graph.
  "$BUN" build "$work/main.mjs" \
    --compile \
    --compile-executable-path="$(readlink -f "$BUN")" \
    --no-compile-autoload-dotenv \
    --no-compile-autoload-bunfig \
    --bytecode --format=esm \
    --compile-jit-policy="$JIT_POLICY" \
    --minify \
    --sourcemap \
    --outfile "$out" >&2
  rm -rf "$work"
}

# Node 24 SEA. Node 24's SEA runs only a CommonJS main, and the entry uses
# top-level await (no CommonJS bundle possible), so: bundle to one ESM file
# (bun's bundler, target node), embed it as an SEA asset, and let a 3-line
# CommonJS main import() it from a data: URL. Inject into a copy of node with
# its debug info stripped (126 -> 108 MB).
build_sea() { # <out>
  local out=$1 work
  work=$(mktemp -d "${TMPDIR:-/tmp}/sea.XXXXXX")
  # import.meta.url of a data: URL module cannot feed createRequire(); pin it to the executable's path.
  "$BUN" build "$ENTRY" --target=node --format=esm --minify \
    --define 'import.meta.url="file:///podgateway-provisioner"' --outfile "$work/main.mjs" >&2
  cat > "$work/main.cjs" <<'EOF2'
const { getAsset } = require("node:sea");
const source = getAsset("main.mjs", "utf8");
import("data:text/javascript;base64," + Buffer.from(source).toString("base64")).catch((error) => { console.error(error); process.exit(70); });
EOF2
  cat > "$work/sea-config.json" <<EOF2
{ "main": "$work/main.cjs", "output": "$work/sea-prep.blob", "assets": { "main.mjs": "$work/main.mjs" },
  "disableExperimentalSEAWarning": true, "useCodeCache": false, "useSnapshot": false }
EOF2
  "$NODE" --experimental-sea-config "$work/sea-config.json" >&2
  cp "$(readlink -f "$NODE")" "$out"
  chmod u+w "$out"
  strip --strip-debug "$out" 2>/dev/null || log "strip not available: SEA binary keeps node's debug info"
  npm exec --yes --package="$POSTJECT_PKG" -- \
    postject "$out" NODE_SEA_BLOB "$work/sea-prep.blob" --sentinel-fuse "$SEA_FUSE" >&2
  rm -rf "$work"
}

build() { # <runtime> <out>
  case "$1" in
    bun) build_bun "$2" ;;
    sea) build_sea "$2" ;;
    *) die "unknown runtime '$1' (bun|sea)" ;;
  esac
  chmod 0755 "$2"
}

# --- rootfs for FROM scratch ------------------------------------------------------

# Copy the ELF interpreter and every shared library ldd resolves, at the same
# absolute paths, as regular files (no symlinks: Debian's /lib64 and merged /usr
# links do not exist in a scratch image).
stage_rootfs() { # <binary> <rootfs>
  local bin=$1 rootfs=$2 lib interp
  rm -rf "$rootfs"
  mkdir -p "$rootfs/etc/ssl/certs"
  interp=$(readelf -l "$bin" 2>/dev/null | sed -n 's/.*Requesting program interpreter: \(.*\)]/\1/p')
  if [ -n "$interp" ]; then
    mkdir -p "$rootfs$(dirname "$interp")"
    cp -L "$interp" "$rootfs$interp"
  fi
  while read -r lib; do
    [ -n "$lib" ] || continue
    mkdir -p "$rootfs$(dirname "$lib")"
    cp -L "$lib" "$rootfs$lib"
  done < <(ldd "$bin" | awk '$2 == "=>" && $3 ~ /^\// { print $3 }')
  chmod -R a+rX,go-w "$rootfs"

  local ca=/etc/ssl/certs/ca-certificates.crt
  [ -s "$ca" ] || die "$ca missing: apt-get install ca-certificates"
  cp -L "$ca" "$rootfs/etc/ssl/certs/ca-certificates.crt"
  chmod 0644 "$rootfs/etc/ssl/certs/ca-certificates.crt"

  # Only for tools and libraries that look the user up (os.userInfo()); the
  # process needs no home directory and no shell.
  printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/nonexistent:/sbin/nologin\n' > "$rootfs/etc/passwd"
  printf 'root:x:0:\nnonroot:x:65532:\n' > "$rootfs/etc/group"
  chmod 0644 "$rootfs/etc/passwd" "$rootfs/etc/group"
}

# --- measurement -------------------------------------------------------------------

# Cold start = spawn() until the first 200 from GET /healthz (polled every ms);
# idle RSS = VmRSS 2 s after that, with no traffic.
measure() { # <binary>...
  "$NODE" --input-type=module - "$@" <<'EOF'
import { spawn } from "node:child_process";
import { readFileSync, statSync } from "node:fs";
import net from "node:net";
const runs = Number(process.env.MEASURE_RUNS ?? 20);
const bins = process.argv.slice(2);
const freePort = () => new Promise((ok) => { const s = net.createServer(); s.listen(0, "127.0.0.1", () => { const { port } = s.address(); s.close(() => ok(port)); }); });
const sleep = (ms) => new Promise((ok) => setTimeout(ok, ms));
const rssKiB = (pid) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))[1]);
const res = Object.fromEntries(bins.map((b) => [b, { start: [], rss: [] }]));
for (let i = 0; i < runs; i++) for (const bin of bins) { // interleaved, so load noise hits both alike
  const port = await freePort();
  const t0 = process.hrtime.bigint();
  const child = spawn(bin, [], { env: { PORT: String(port), HOST: "127.0.0.1", PATH: "/usr/bin:/bin", KUBECONFIG: process.env.MEASURE_KUBECONFIG }, stdio: "ignore" });
  for (;;) {
    try { const r = await fetch(`http://127.0.0.1:${port}/healthz`); await r.arrayBuffer(); if (r.status === 200) break; } catch {}
    if (process.hrtime.bigint() - t0 > 15_000_000_000n) { child.kill("SIGKILL"); throw new Error(`${bin}: no 200 on /healthz in 15 s`); }
    await sleep(1);
  }
  res[bin].start.push(Number(process.hrtime.bigint() - t0) / 1e6);
  await sleep(2000);
  res[bin].rss.push(rssKiB(child.pid) / 1024);
  child.kill("SIGTERM");
  await new Promise((ok) => child.once("exit", ok));
}
const q = (a, p) => { const s = [...a].sort((x, y) => x - y); return s[Math.min(s.length - 1, Math.floor(p * s.length))]; };
console.log(`runs per binary: ${runs}`);
console.log("| binary | size (MiB) | cold start p50 (ms) | min | p90 | idle RSS p50 (MiB) |");
console.log("| --- | ---: | ---: | ---: | ---: | ---: |");
for (const [bin, r] of Object.entries(res))
  console.log(`| ${bin.split("/").pop()} | ${(statSync(bin).size / 2 ** 20).toFixed(1)} | ${q(r.start, 0.5).toFixed(1)} | ${Math.min(...r.start).toFixed(1)} | ${q(r.start, 0.9).toFixed(1)} | ${q(r.rss, 0.5).toFixed(1)} |`);
EOF
}

if [ "$MEASURE" = 1 ]; then
  mdir="$OUT_DIR/measure"
  rm -rf "$mdir"; mkdir -p "$mdir"
  log "building bun candidate"; build bun "$mdir/$NAME-bun"
  log "building sea candidate"; build sea "$mdir/$NAME-sea"
  for b in "$mdir/$NAME-bun" "$mdir/$NAME-sea"; do
    echo "ldd $(basename "$b"):"; ldd "$b" | sed 's/ (0x[0-9a-f]*)//; s/^/  /'
  done
  # The service reads a kubeconfig at start-up but needs no API server to answer /healthz:
  # point it at a closed port unless MEASURE_KUBECONFIG names a real one.
  if [ -z "${MEASURE_KUBECONFIG:-}" ]; then
    MEASURE_KUBECONFIG="$mdir/kubeconfig"
    printf '%s\n' 'apiVersion: v1' 'kind: Config' 'current-context: m' \
      'clusters: [{name: m, cluster: {server: "http://127.0.0.1:9"}}]' \
      'users: [{name: m, user: {token: unused}}]' \
      'contexts: [{name: m, context: {cluster: m, user: m, namespace: default}}]' > "$MEASURE_KUBECONFIG"
  fi
  export MEASURE_KUBECONFIG
  log "measuring (${MEASURE_RUNS:-20} runs each, interleaved)"
  measure "$mdir/$NAME-bun" "$mdir/$NAME-sea"
  exit 0
fi

mkdir -p "$OUT_DIR"
log "building $OUT_DIR/$NAME with runtime '$RUNTIME' from $ENTRY"
stage=$(mktemp -d "${TMPDIR:-/tmp}/pgp-build.XXXXXX")
trap 'rm -rf "$stage"' EXIT
# (bun also writes a .map next to the output; the executable already embeds it.)
build "$RUNTIME" "$stage/$NAME"
mv -f "$stage/$NAME" "$OUT_DIR/$NAME"
log "staging $OUT_DIR/rootfs"
stage_rootfs "$OUT_DIR/$NAME" "$OUT_DIR/rootfs"
{
  echo "runtime: $RUNTIME"
  echo "entry: $ENTRY"
  echo "git: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD 2>/dev/null || echo -dirty)"
  echo "bun: $("$BUN" --version)  node: $("$NODE" --version)"
  echo "size: $(stat -c %s "$OUT_DIR/$NAME") bytes"
  echo "ldd:"; ldd "$OUT_DIR/$NAME" | sed 's/ (0x[0-9a-f]*)//; s/^/  /'
  echo "rootfs:"; (cd "$OUT_DIR/rootfs" && find . -type f -printf '  /%P %s\n' | sort)
} > "$OUT_DIR/build-info.txt"
cat "$OUT_DIR/build-info.txt" >&2
log "done: $OUT_DIR/$NAME"
