/**
 * Byte relays between TCP and Unix sockets, to reach a process in its own network namespace (the JobSink peer,
 * which listens on every interface of a fixed port): the namespace's loopback and ours are joined by socket files.
 *
 *   node bench/lib/relay.ts <listen>=<connect> ...   with addresses tcp:127.0.0.1:8080 or unix:/path
 */
import { createConnection, createServer, type Server } from "node:net";
import { fileURLToPath } from "node:url";

type Address = { port: number; host: string } | { path: string };

function parse(address: string): Address {
  if (address.startsWith("unix:")) return { path: address.slice(5) };
  const match = /^tcp:(.+):(\d+)$/.exec(address);
  if (!match) throw new Error(`not an address: ${address} (tcp:HOST:PORT or unix:PATH)`);
  return { host: match[1]!, port: Number(match[2]) };
}

/** Listens on `listen`; every connection is piped to a new connection to `connect`. Resolves once listening. */
export function relay(listen: string, connect: string): Promise<Server> {
  const target = parse(connect);
  const server = createServer({ noDelay: true }, (incoming) => {
    const outgoing = createConnection(target as never);
    outgoing.setNoDelay?.(true);
    incoming.pipe(outgoing).pipe(incoming);
    const close = () => {
      incoming.destroy();
      outgoing.destroy();
    };
    incoming.on("error", close).on("close", close);
    outgoing.on("error", close).on("close", close);
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    const at = parse(listen);
    if ("path" in at) server.listen(at.path, () => resolve(server));
    else server.listen(at.port, at.host, () => resolve(server));
  });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  for (const pair of process.argv.slice(2)) {
    const [listen, connect] = pair.split("=");
    await relay(listen!, connect!);
  }
  console.log("relaying");
}
