/**
 * The README's way to develop, as a user types it: `deno task dev` against the local cluster, one event sent
 * with curl, the done answer back. Whatever runtime runs this file, the service runs under `deno task`.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { resolve } from "node:path";
import { after, before, test } from "node:test";
import { promisify } from "node:util";
import { repo, routedNamespace } from "../support/cluster.ts";
import { type RunningService, startService } from "../support/service.ts";

const run = promisify(execFile);
const deno = resolve(repo, "node_modules/.bin/deno");

let service: RunningService;
let namespace: Awaited<ReturnType<typeof routedNamespace>>;

before(async () => {
  namespace = await routedNamespace("e2e-deno-task");
  // node_modules/.bin first on PATH, as `npm ci` leaves it and test/run.sh runs: the case that used to break.
  const PATH = `${resolve(repo, "node_modules/.bin")}:${process.env.PATH}`;
  service = await startService({ CLIENT_NAMESPACE: namespace.name, PATH }, {
    command: deno,
    args: ["task", "--cwd", repo, "dev"],
  });
});
after(async () => {
  await namespace?.remove();
});

test("deno task dev serves the local cluster: a curl event gets the done answer", async () => {
  const { stdout } = await run("curl", [
    "-sS", "-i", `${service.url}/`,
    "-H", "ce-specversion: 1.0", "-H", "ce-id: deno-task-1", "-H", "ce-source: /e2e/deno-task",
    "-H", "ce-type: io.podgateway.client.pending", "-H", "content-type: application/json",
    "-d", '{"gateway_name":"foo"}',
  ]);
  assert.match(stdout, /^HTTP\/1\.1 200/);
  assert.match(stdout, /ce-type: io\.podgateway\.client\.scheduling\.done/i);
  assert.match(stdout, new RegExp(`"namespace":"${namespace.name}"`));
});

test("Ctrl-C stops it, watcher and all (SIGTERM alone ends the service, but --watch then waits for a file change)", async () => {
  assert.equal(await service.stop("SIGINT"), 0);
  await assert.rejects(fetch(`${service.url}/healthz`));
});

test("deno task start runs the same entrypoint", async () => {
  const { stdout } = await run(deno, ["task", "--cwd", repo, "start", "--help"], {
    env: { ...process.env, PATH: `${resolve(repo, "node_modules/.bin")}:${process.env.PATH}` },
  });
  assert.match(stdout, /--client-namespace/);
});
