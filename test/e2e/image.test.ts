/**
 * The container image as shipped: built by scripts/publish-local.sh (buildah, FROM scratch) and pushed to the
 * local registry at 127.0.0.1:5001. This reads it back from the registry with skopeo, checks its config
 * (Entrypoint, User 65532:65532, port), unpacks its layers into a directory and runs the executable from
 * there — as root: in a chroot of exactly the image's files, read-only, as user 65532 (what Kubernetes does
 * with readOnlyRootFilesystem and runAsUser); otherwise the unpacked executable directly.
 *
 *   PGW_IMAGE_TEST_NO_PUBLISH=1  reuse the image of the last publish-local run (.cache/publish-local.env)
 *
 * The cluster tests need the local cluster (`npm run cluster -- up`) and FAIL without it, they never skip.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { once } from "node:events";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { adminClient, clusterEnv, getPodOrNull, routedNamespace } from "../support/cluster.ts";
import { replyEvent } from "../support/received.ts";

const repo = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const EXECUTABLE = "/podgateway-provisioner";
const UID = 65532;

// deno-lint-ignore no-explicit-any
type Obj = Record<string, any>;

function sh(command: string, args: string[], options: { env?: Record<string, string | undefined>; input?: string } = {}): string {
  const result = spawnSync(command, args, { encoding: "utf8", env: { ...process.env, ...options.env }, input: options.input, maxBuffer: 64 * 2 ** 20 });
  if (result.error) throw result.error;
  if (result.status !== 0) throw new Error(`${command} ${args.join(" ")} exited ${result.status}:\n${result.stderr}${result.stdout}`);
  return result.stdout;
}

/** The image publish-local pushed: runs it unless told to reuse the last one. */
function publishedImage(): Record<string, string> {
  const envFile = join(repo, ".cache/publish-local.env");
  if (process.env.PGW_IMAGE_TEST_NO_PUBLISH !== "1") sh("bash", [join(repo, "scripts/publish-local.sh")]);
  if (!existsSync(envFile)) throw new Error(`${envFile} is missing: scripts/publish-local.sh has not run`);
  return Object.fromEntries(
    readFileSync(envFile, "utf8").split("\n").filter((line) => line.includes("=")).map((line) => [line.slice(0, line.indexOf("=")), line.slice(line.indexOf("=") + 1)]),
  );
}

/** Copies the image out of the registry as an OCI layout and unpacks its layers, in order, into `rootfs`. */
function unpack(image: string, work: string): { rootfs: string; manifest: Obj; uncompressedBytes: number; entries: string[] } {
  const layout = join(work, "oci");
  sh("skopeo", ["copy", "--src-tls-verify=false", `docker://${image}`, `oci:${layout}:image`]);
  const index = JSON.parse(readFileSync(join(layout, "index.json"), "utf8")) as Obj;
  const blob = (digest: string) => join(layout, "blobs", ...String(digest).split(":"));
  const manifest = JSON.parse(readFileSync(blob(index.manifests[0].digest), "utf8")) as Obj;
  const rootfs = join(work, "rootfs");
  mkdirSync(rootfs);
  let uncompressedBytes = 0;
  const entries: string[] = [];
  for (const layer of manifest.layers as Obj[]) {
    assert.match(layer.mediaType, /tar\+gzip$|tar$/);
    const flag = layer.mediaType.endsWith("gzip") ? "-z" : "";
    // tar -tv: owner and mode of every entry as stored in the layer.
    entries.push(...sh("tar", [flag, "-tvf", blob(layer.digest)].filter(Boolean)).trim().split("\n"));
    sh("tar", [flag, "-xpf", blob(layer.digest), "-C", rootfs, "--numeric-owner"].filter(Boolean));
    uncompressedBytes += Number(sh("sh", ["-c", `${flag ? "gzip -dc" : "cat"} "$0" | wc -c`, blob(layer.digest)]).trim());
  }
  // The chroot's / must be traversable by 65532 (mkdtemp made its parent 0700).
  chmodSync(rootfs, 0o755);
  mkdirSync(join(rootfs, "proc"), { recursive: true });
  return { rootfs, manifest, uncompressedBytes, entries };
}

function filesUnder(root: string, dir = ""): string[] {
  return readdirSync(join(root, dir), { withFileTypes: true }).flatMap((entry) => {
    const path = `${dir}/${entry.name}`;
    return entry.isDirectory() ? filesUnder(root, path) : [path];
  });
}

const asRoot = typeof process.getuid === "function" && process.getuid() === 0;

/**
 * How to run the image's executable: as root, in a private mount namespace, the unpacked image bind-mounted
 * read-only, /proc mounted (a container runtime does that too), chroot into it as 65532:65532.
 */
function imageCommand(rootfs: string): { command: string; args: string[]; chroot: boolean } {
  if (asRoot) {
    const script = [
      "set -e",
      'mount --bind "$0" "$0"',
      'mount -o remount,bind,ro "$0"',
      'mount -t proc proc "$0/proc"',
      `exec chroot --userspec=${UID}:${UID} "$0" ${EXECUTABLE}`,
    ].join("\n");
    return { command: "unshare", args: ["--mount", "--propagation", "private", "sh", "-c", script, rootfs], chroot: true };
  }
  return { command: join(rootfs, EXECUTABLE), args: [], chroot: false };
}

interface Running {
  url: string;
  child: ChildProcess;
  logs: Obj[];
  output: () => string;
  stop: () => Promise<number | null>;
}

/** Starts the image's executable on a random port (PORT=0; it logs the port it got) with `env` only. */
async function runImage(rootfs: string, env: Record<string, string>): Promise<Running> {
  const { command, args } = imageCommand(rootfs);
  const child = spawn(command, args, { env: { PATH: "/usr/sbin:/usr/bin:/sbin:/bin", HOST: "127.0.0.1", PORT: "0", ...env }, stdio: ["ignore", "pipe", "pipe"] });
  const logs: Obj[] = [];
  let raw = "";
  child.stderr!.on("data", (chunk) => (raw += chunk));
  const port = new Promise<number>((resolvePort, reject) => {
    createInterface({ input: child.stdout! }).on("line", (line) => {
      raw += line + "\n";
      try {
        const record = JSON.parse(line) as Obj;
        logs.push(record);
        if (record.msg === "listening") resolvePort(record.port);
      } catch {
        // not a log line
      }
    });
    child.once("exit", (code) => reject(new Error(`the image's executable exited with ${code} before listening:\n${raw}`)));
    setTimeout(() => reject(new Error(`the image's executable did not listen within 15 s:\n${raw}`)), 15_000);
  });
  const listening = await port;
  return {
    url: `http://127.0.0.1:${listening}`,
    child,
    logs,
    output: () => raw,
    stop: async () => {
      if (child.exitCode !== null) return child.exitCode;
      child.kill("SIGTERM");
      const [code] = await once(child, "exit");
      return code as number | null;
    },
  };
}

describe("the container image in the local registry", () => {
  let image: Record<string, string>;
  let work: string;
  let unpacked: ReturnType<typeof unpack>;

  before(() => {
    image = publishedImage();
    assert.match(image.IMAGE ?? "", /^127\.0\.0\.1:5001\/podgateway-provisioner:[0-9a-f]{7,}$/);
    work = mkdtempSync(join(tmpdir(), "image-test-"));
    unpacked = unpack(image.IMAGE!, work);
  });
  after(() => {
    if (work) rmSync(work, { recursive: true, force: true });
  });

  test("config: Entrypoint is the executable, User 65532:65532, port 8080, nothing to pull", (t) => {
    const config = JSON.parse(sh("skopeo", ["inspect", "--tls-verify=false", "--config", `docker://${image.IMAGE}`])) as Obj;
    assert.deepEqual(config.config.Entrypoint, [EXECUTABLE]);
    assert.equal(config.config.User, `${UID}:${UID}`);
    assert.deepEqual(Object.keys(config.config.ExposedPorts ?? {}), ["8080/tcp"]);
    assert.equal(config.config.Cmd, undefined);
    assert.ok((config.config.Env as string[]).includes("PORT=8080"));
    assert.equal(config.os, "linux");
    assert.equal(config.architecture, "amd64");
    // FROM scratch: every layer is ours (no base image history).
    assert.equal(config.rootfs.diff_ids.length, unpacked.manifest.layers.length);
    const compressed = (unpacked.manifest.layers as Obj[]).reduce((sum, layer) => sum + layer.size, 0);
    t.diagnostic(`image ${image.IMAGE}: ${unpacked.manifest.layers.length} layer(s), ${(compressed / 2 ** 20).toFixed(1)} MiB compressed, ${(unpacked.uncompressedBytes / 2 ** 20).toFixed(1)} MiB uncompressed`);
  });

  test(":latest and :<git sha> are the same image", () => {
    const digest = (ref: string) => (JSON.parse(sh("skopeo", ["inspect", "--tls-verify=false", `docker://${ref}`])) as Obj).Digest;
    assert.equal(digest(image.IMAGE!), digest(image.IMAGE_LATEST!));
    assert.equal(digest(image.IMAGE!), image.IMAGE_DIGEST);
  });

  test("contents: the executable, its loader and shared libraries, a CA bundle, passwd/group; no shell, all root-owned", () => {
    const files = filesUnder(unpacked.rootfs).sort();
    const allowed = [
      /^\/podgateway-provisioner$/,
      /^\/etc\/(passwd|group)$/,
      /^\/etc\/ssl\/certs\/ca-certificates\.crt$/,
      /^\/lib64\/ld-linux-x86-64\.so\.2$/,
      /^\/lib\/x86_64-linux-gnu\/[^/]+\.so(\.\d+)*$/,
    ];
    for (const file of files) assert.ok(allowed.some((re) => re.test(file)), `unexpected file in the image: ${file} (all: ${files.join(" ")})`);
    assert.ok(!existsSync(join(unpacked.rootfs, "bin/sh")));
    const exe = statSync(join(unpacked.rootfs, EXECUTABLE));
    assert.ok(exe.mode & 0o001, "the executable is executable by anyone (65532)");
    // Every entry root-owned and not writable by others (tar -tv columns: mode owner/group ...).
    for (const entry of unpacked.entries) {
      const [mode, owner] = entry.split(/\s+/);
      assert.match(owner!, /^(0|root)\/(0|root)$/, entry);
      assert.ok(!/^.{8}w/.test(mode!) || mode!.startsWith("l"), `world-writable: ${entry}`);
    }
    assert.match(readFileSync(join(unpacked.rootfs, "etc/passwd"), "utf8"), new RegExp(`^nonroot:x:${UID}:${UID}:`, "m"));
    assert.match(readFileSync(join(unpacked.rootfs, "etc/ssl/certs/ca-certificates.crt"), "utf8"), /BEGIN CERTIFICATE/);
  });

  test("the executable's ELF interpreter and every library it needs (DT_NEEDED) are in the image", () => {
    const exe = join(unpacked.rootfs, EXECUTABLE);
    const interpreter = /Requesting program interpreter: (\S+)]/.exec(sh("readelf", ["-l", exe]))?.[1];
    assert.ok(interpreter, "dynamically linked executable names its loader");
    assert.ok(existsSync(join(unpacked.rootfs, interpreter)), `loader ${interpreter} missing from the image`);
    const needed = [...sh("readelf", ["-d", exe]).matchAll(/\(NEEDED\)\s+Shared library: \[([^\]]+)\]/g)].map((m) => m[1]!);
    assert.ok(needed.length > 0);
    for (const lib of needed) {
      if (lib === interpreter.split("/").pop()) continue; // the loader itself, already mapped
      assert.ok(existsSync(join(unpacked.rootfs, "lib/x86_64-linux-gnu", lib)), `${lib} missing from the image`);
    }
  });

  test("the image's executable starts and answers /healthz (PORT random, no API server reachable)", async (t) => {
    const kubeconfig = join(unpacked.rootfs, "dummy-kubeconfig");
    writeFileSync(kubeconfig, [
      "apiVersion: v1",
      "kind: Config",
      "current-context: none",
      'clusters: [{name: none, cluster: {server: "http://127.0.0.1:9"}}]',
      "users: [{name: none, user: {token: unused}}]",
      "contexts: [{name: none, context: {cluster: none, user: none, namespace: default}}]",
    ].join("\n"), { mode: 0o644 });
    const mode = imageCommand(unpacked.rootfs).chroot ? "chroot of the image, read-only, as 65532" : "unpacked executable (not root: no chroot)";
    const started = Date.now();
    const running = await runImage(unpacked.rootfs, { KUBECONFIG: imageCommand(unpacked.rootfs).chroot ? "/dummy-kubeconfig" : kubeconfig });
    try {
      const health = await fetch(`${running.url}/healthz`);
      assert.equal(health.status, 200, await health.text());
      t.diagnostic(`${mode}: listening and healthy ${Date.now() - started} ms after spawn`);
      const ready = await fetch(`${running.url}/readyz`);
      await ready.body?.cancel();
      assert.equal(ready.status, 200, "ready without an API server: its trouble is answered per event");
    } finally {
      const code = await running.stop();
      // Deno's child_process reports (null, "SIGTERM") for a child that was sent SIGTERM even when it then
      // exited 0 by itself, so the log line is the runtime-independent proof of a clean shutdown.
      assert.ok(running.logs.some((line) => line.msg === "stopped"), `SIGTERM must end it cleanly:\n${running.output()}`);
      if (code !== null) assert.equal(code, 0, running.output());
    }
  });

  describe("against the local cluster", () => {
    let cluster: Record<string, string>;
    let kubeconfigInImage: string;
    let running: Running;

    before(async () => {
      cluster = clusterEnv();
      // Self-contained kubeconfig (certificates inline) at a path inside the image's root.
      const flat = sh(cluster.KUBECTL!, ["config", "view", "--raw", "--flatten", "--minify"], { env: { KUBECONFIG: cluster.KUBECONFIG } });
      writeFileSync(join(unpacked.rootfs, "kubeconfig"), flat, { mode: 0o644 });
      kubeconfigInImage = imageCommand(unpacked.rootfs).chroot ? "/kubeconfig" : join(unpacked.rootfs, "kubeconfig");
    });
    after(async () => {
      if (running) await running.stop();
    });

    test("/healthz and /readyz answer 200: the executable reaches the API server with the kubeconfig's TLS client certificate", async () => {
      running = await runImage(unpacked.rootfs, { KUBECONFIG: kubeconfigInImage });
      const health = await fetch(`${running.url}/healthz`);
      assert.equal(health.status, 200, await health.text());
      const ready = await fetch(`${running.url}/readyz`);
      assert.equal(ready.status, 200, `${await ready.text()}\n${running.output()}`);
    });

    // The full event path through the image's executable (same flow as provision.test.ts runs on Node/Deno).
    describe("events through the image's executable", () => {
      let namespace: { name: string; remove: () => Promise<void> };
      let service: Running;

      before(async () => {
        namespace = await routedNamespace("e2e-image");
        service = await runImage(unpacked.rootfs, { KUBECONFIG: kubeconfigInImage, CLIENT_NAMESPACE: namespace.name });
      });
      after(async () => {
        if (service) await service.stop();
        if (namespace) await namespace.remove();
      });

      const send = async (id: string, gateway: string) => {
        const response = await fetch(service.url, {
          method: "POST",
          headers: {
            "ce-specversion": "1.0", "ce-id": id, "ce-source": "/e2e/image", "ce-type": "io.podgateway.client.pending",
            "content-type": "application/json",
          },
          body: JSON.stringify({ gateway_name: gateway }),
        });
        const body = await response.text();
        const event = replyEvent(Object.fromEntries(response.headers), body);
        return { status: response.status, type: event?.type ?? null, data: (event?.data ?? {}) as Obj, body };
      };

      test("pending {gateway_name: foo} → 200 scheduling.done, and the pod is routed by foo with its gate removed", async () => {
        const reply = await send(`image-foo-${Date.now()}`, "foo");
        assert.equal(reply.status, 200, reply.body);
        assert.equal(reply.type, "io.podgateway.client.scheduling.done", reply.body);
        assert.equal(reply.data.namespace, namespace.name);
        assert.equal(reply.data.gateway_name, "foo");
        const pod = await getPodOrNull(namespace.name, reply.data.pod_name);
        assert.ok(pod, `pod ${reply.data.pod_name} exists`);
        assert.equal(pod.metadata?.labels?.setGateway, "foo");
        const init = pod.spec?.initContainers?.find((c) => c.name === "gateway-init");
        assert.ok(init, "the foo webhook added gateway-init");
        assert.ok(JSON.stringify(init).includes("foo-pod-gateway") && !JSON.stringify(init).includes("bar-pod-gateway"));
        assert.deepEqual(pod.spec?.schedulingGates ?? [], []);
      });

      test("pending {gateway_name: nope} → 200 scheduling.failed GatewayNotRouted, no pod left", async () => {
        const reply = await send(`image-nope-${Date.now()}`, "nope");
        assert.equal(reply.status, 200, reply.body);
        assert.equal(reply.type, "io.podgateway.client.scheduling.failed", reply.body);
        assert.equal(reply.data.reason, "GatewayNotRouted");
        const kube = await adminClient();
        const list = await kube.performRequest<{ items: Obj[] }>({ method: "GET", path: `/api/v1/namespaces/${namespace.name}/pods` });
        assert.ok(list.items.every((pod) => pod.metadata.labels?.setGateway !== "nope"), "the unrouted pod was deleted");
      });
    });
  });
});
