/**
 * `npm run cluster -- down` leaves nothing behind: no process, mount, network namespace, iptables rule,
 * interface or cgroup of the cluster or its real node. Run after `down` (test/run.sh does, at the very end:
 * `node --test test/harness/after-down.ts`; not named *.test.ts, so the harness run with the cluster up skips it).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, readlinkSync } from "node:fs";
import { dirname } from "node:path";
import { clusterEnv } from "../support/cluster.ts";

const env = clusterEnv();
const state = env.PGW_CLUSTER_STATE_DIR!;
const sh = (command: string, ...args: string[]) => execFileSync(command, args, { encoding: "utf8" });

test("no process of the cluster is left: none started from its binaries, its state dir or its network namespaces", () => {
  const cache = dirname(dirname(env.KUBECTL)); // every binary the cluster builds lives below it
  const left: string[] = [];
  for (const pid of readdirSync("/proc").filter((p) => /^\d+$/.test(p))) {
    try {
      const exe = readlinkSync(`/proc/${pid}/exe`);
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, "utf8").replaceAll("\0", " ");
      const ours = [`${state}/`, `${env.PGW_NODE_IP}:`, new URL(env.PGW_ECHO_URL!).hostname];
      if (exe.startsWith(`${cache}/`) || ours.some((mark) => cmdline.includes(mark))) {
        left.push(`${pid} ${cmdline}`);
      }
    } catch {
      // gone meanwhile, or a kernel thread
    }
  }
  assert.deepEqual(left, []);
});

test("no mount under the state dir, no network namespace, no cgroup of the node", () => {
  const mounts = readFileSync("/proc/self/mountinfo", "utf8").split("\n").filter((line) => line.split(" ")[4]?.startsWith(`${state}/`));
  assert.deepEqual(mounts, []);
  const netns = existsSync("/run/netns") ? readdirSync("/run/netns").filter((n) => n.startsWith("pgw-") || n.startsWith("cni-")) : [];
  assert.deepEqual(netns, []);
  const cgroups = readdirSync("/sys/fs/cgroup").filter((h) => existsSync(`/sys/fs/cgroup/${h}/pgw-node`));
  assert.deepEqual(cgroups, []);
});

test("no iptables rule or chain and no interface of the node or kube-proxy is left", () => {
  const rules = ["iptables-save", "ip6tables-save"].flatMap((save) =>
    sh(save).split("\n").filter((line) => /PGW-|KUBE-|CNI-/.test(line)));
  assert.deepEqual(rules, []);
  const links = sh("ip", "-o", "link").split("\n").filter((line) => /: (pgw|veth)/.test(line));
  assert.deepEqual(links, []);
});
