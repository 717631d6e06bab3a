/** A CloudEvents receiver on 127.0.0.1 standing in for K_SINK: records what arrives, can be told to fail. */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { type ReceivedEvent, receivedEvent } from "./received.ts";

export interface EventReceiver {
  url: string;
  events: ReceivedEvent[];
  /** The HTTP headers of each request in {@link events}, same order. */
  headers: Record<string, string>[];
  /** HTTP status to answer with; 202 by default. */
  status: number;
  close: () => Promise<void>;
}

export async function startReceiver(): Promise<EventReceiver> {
  const receiver: EventReceiver = { url: "", events: [], headers: [], status: 202, close: async () => {} };
  const server: Server = createServer((request, response) => {
    let body = "";
    request.on("data", (chunk) => (body += chunk));
    request.on("end", () => {
      if (receiver.status < 300) {
        receiver.events.push(receivedEvent(request.headers as Record<string, string>, body));
        receiver.headers.push(request.headers as Record<string, string>);
      }
      response.writeHead(receiver.status).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  receiver.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  receiver.close = () => new Promise((resolve) => server.close(() => resolve()));
  return receiver;
}
