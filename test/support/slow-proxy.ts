/**
 * A slow network between the service and the API server, for fault tests: a TCP proxy on 127.0.0.1 that passes
 * TLS through untouched (the API server's certificate has the IP SAN 127.0.0.1, so verification still holds)
 * and holds every chunk, in both directions, for `delayMs` before passing it on. A delay past the service's
 * `KUBE_TIMEOUT_MS` makes every API call time out; `setDelay(0)` heals it. Traffic goes only to `target`.
 */
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { createServer, type Server, type Socket, connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface SlowProxy {
  /** `https://127.0.0.1:<port>`: the API server's address through the proxy. */
  server: string;
  port: number;
  setDelay: (ms: number) => void;
  /** Connections currently open through the proxy, and ever accepted. */
  stats: () => { open: number; accepted: number };
  close: () => Promise<void>;
}

/** Starts the proxy to `target` (e.g. `https://127.0.0.1:16443`); only loopback targets are accepted. */
export async function startSlowProxy(target: string, delayMs = 0): Promise<SlowProxy> {
  const { hostname, port } = new URL(target);
  if (hostname !== "127.0.0.1" && hostname !== "localhost" && hostname !== "[::1]") {
    throw new Error(`slow proxy: only a loopback target is allowed, not ${hostname}`);
  }
  let delay = delayMs;
  let open = 0;
  let accepted = 0;
  const sockets = new Set<Socket>();

  /** Copies `from` to `to`, each chunk `delay` ms after it arrived, in order; ends `to` after the last one. */
  const pipeSlowly = (from: Socket, to: Socket) => {
    let queue = Promise.resolve();
    from.on("data", (chunk: Buffer) => {
      const due = Date.now() + delay;
      queue = queue.then(async () => {
        const wait = due - Date.now();
        if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
        if (!to.destroyed) to.write(chunk);
      });
    });
    from.on("end", () => {
      queue = queue.then(() => {
        if (!to.destroyed) to.end();
      });
    });
  };

  const server: Server = createServer((client) => {
    accepted++;
    open++;
    const upstream = connect({ host: hostname.replace(/^\[|\]$/g, ""), port: Number(port) || 443 });
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on("error", () => {
        client.destroy();
        upstream.destroy();
      });
    }
    client.once("close", () => {
      open--;
      sockets.delete(client);
      // Bytes already on their way still arrive (a slow network loses nothing), then the other side closes.
      setTimeout(() => upstream.destroy(), delay + 50);
    });
    upstream.once("close", () => {
      sockets.delete(upstream);
      setTimeout(() => client.destroy(), delay + 50);
    });
    pipeSlowly(client, upstream);
    pipeSlowly(upstream, client);
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const address = server.address();
  const listening = typeof address === "object" && address ? address.port : 0;
  return {
    server: `https://127.0.0.1:${listening}`,
    port: listening,
    setDelay: (ms) => {
      delay = ms;
    },
    stats: () => ({ open, accepted }),
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

/** A copy of a kubeconfig whose cluster `server:` entries point at `server` instead; returns its path. */
export function kubeconfigVia(server: string, source: string): string {
  const text = readFileSync(source, "utf8");
  const rewritten = text.replace(/^(\s*server:\s*)\S+\s*$/gm, `$1${server}`);
  if (rewritten === text) throw new Error(`${source}: no server entry to rewrite`);
  const path = join(mkdtempSync(join(tmpdir(), "pgw-slow-")), "kubeconfig");
  writeFileSync(path, rewritten, { mode: 0o600 });
  return path;
}
