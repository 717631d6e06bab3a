#!/usr/bin/env bash
# The whole test suite, as the README says: `npm test`.
# Brings the local cluster up (built and cached on first use), runs every test file under Node and Deno, the
# service's e2e and fault suites against the single executable too,
# and takes the cluster down again, whatever happened.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/node_modules/.bin:$PATH"
[ -x node_modules/.bin/deno ] || npm ci --no-audit --no-fund

status=0
step() { echo; echo "=== $*"; }

step "typecheck"
tsc --noEmit -p . || status=1
deno check src/main/deno.ts || status=1
node scripts/check-edge-core.ts || status=1

step "local cluster"
bash cluster/cluster.sh up
trap 'bash cluster/cluster.sh down' EXIT

# Our image runs as pods on the real node (test/e2e/in-cluster.test.ts): the single executable, built once, in
# the image pushed to the local registry; the executable's own e2e run below uses the same build.
step "single executable and image"
bash scripts/publish-local.sh >/dev/null || status=1

# Unit files run in parallel; e2e files one at a time, since some stop the API server on purpose.
step "Node $(node --version): unit tests"
node --test 'test/unit/**/*.test.ts' || status=1
step "Node $(node --version): tests of the local cluster (harness), then e2e tests"
node --test --test-concurrency=1 'test/harness/**/*.test.ts' || status=1
node --test --test-concurrency=1 'test/e2e/**/*.test.ts' || status=1

step "Deno $(deno --version | head -1 | cut -d' ' -f2): unit and e2e tests"
# the player's page test drives a Java app in a pod through a browser: which runtime runs the test adds nothing
deno test --allow-all --no-check test/unit test/harness $(ls test/e2e/*.test.ts | grep -v player.test.ts) || status=1

# The single executable users run gets the same e2e and fault suites: every e2e file that starts the service,
# run by Node with the service being dist/podgateway-provisioner (test/support/runtime.ts).
step "single executable (Bun): e2e and fault tests"
PGW_TEST_SERVICE=exe node --test --test-concurrency=1 $(grep -l startService test/e2e/*.test.ts | grep -v deno-task-dev) || status=1

# Benchmarks are not timed tests: here only the harness is exercised (lost, duplicated or unrouted events fail it).
step "bench --quick: smoke test of the benchmark harness"
node bench/run.ts --quick || status=1

# `down` leaves nothing behind: no process, mount, netns, iptables rule, interface or cgroup
step "cluster down, and nothing left of it"
trap - EXIT
bash cluster/cluster.sh down || status=1
node --test test/harness/after-down.ts || status=1

echo
if [ "$status" -eq 0 ]; then echo "=== all test runs passed"; else echo "=== some test runs FAILED"; fi
exit "$status"
