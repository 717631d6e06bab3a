// The echo host: the one "outside" a pod on the real node may reach. It runs in a network namespace of
// its own (cluster/node.sh) and answers every request with the source address it saw, so a client can
// tell whether its traffic left through its gateway (the gateway pod's address) or directly (its own).
//
//   node cluster/echo-host.mjs <listen-ip> <port>
import { createServer } from "node:http";

const [host, port] = process.argv.slice(2);
const server = createServer((req, res) => {
  if (req.url === "/healthz") return void res.end("ok\n");
  const seen = { remote_address: req.socket.remoteAddress, method: req.method, path: req.url };
  console.log(`${new Date().toISOString()} ${req.method} ${req.url} from ${seen.remote_address}`);
  res.setHeader("content-type", "application/json");
  res.end(JSON.stringify(seen) + "\n");
});
server.listen(Number(port), host, () => console.log(`echo host listening on http://${host}:${port}`));
process.on("SIGTERM", () => server.close(() => process.exit(0)));
