/**
 * The gateway's websocket form. etcd 3.4 wraps its gateway in
 * grpc-websocket-proxy: an HTTP/1.1 websocket upgrade on a /v3/ path
 * becomes a POST to that path whose body is the client's messages, each
 * followed by a newline, and every line of the answer goes back as one text
 * message (a browser can watch this way). So it is one more kind of
 * HttpExchange for the gateway:
 * - the call's metadata: only `Authorization`, taken from the
 *   `Sec-WebSocket-Protocol` header ("Bearer, TOKEN" becomes "Bearer TOKEN",
 *   answered with the protocol "Bearer"), as the proxy forwards it;
 * - the body ends when the client closes; the call is cancelled with it;
 * - when the answer ends, the websocket is closed (1000);
 * - flow control: a client that stops reading holds the call back once the
 *   socket has `BUFFERED_BYTES_MAX` unsent.
 */
import * as http from "node:http";
import { Duplex, PassThrough } from "node:stream";
import { WebSocket, WebSocketServer } from "ws";
import { HttpExchange } from "./gateway";

/** Unsent bytes on a websocket past which the call waits for the client to read. */
export const BUFFERED_BYTES_MAX = 1 << 20;

/** Takes websocket upgrades; `serve` gets each as an exchange. */
export class GatewayWebsockets {
  private readonly wss: WebSocketServer;

  /** `messageBytesMax`: what one client message may weigh (the gateway's body limit). */
  constructor(private readonly serve: (ex: HttpExchange) => void, messageBytesMax: number) {
    this.wss = new WebSocketServer({
      noServer: true,
      perMessageDeflate: false,
      maxPayload: messageBytesMax,
      handleProtocols: (protocols) => (bearer(protocols) ? "Bearer" : false),
    });
  }

  upgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer): void {
    this.wss.handleUpgrade(req, socket, head, (ws) => this.serve(websocketExchange(req, ws)));
  }

  /** Closes every open websocket (their calls are cancelled). */
  close(): void {
    for (const ws of this.wss.clients) ws.terminate();
  }
}

/** "Bearer, TOKEN" (a browser's way to send a token with an upgrade) -> "Bearer TOKEN", as the proxy reads it. */
function bearer(protocols: Set<string>): string | undefined {
  const list = [...protocols];
  return list[0] === "Bearer" && list.length > 1 ? `Bearer ${list.slice(1).join(" ")}` : undefined;
}

function websocketExchange(req: http.IncomingMessage, ws: WebSocket): HttpExchange {
  const headers: Record<string, string> = {};
  const protocols = String(req.headers["sec-websocket-protocol"] ?? "").split(",").map((p) => p.trim()).filter((p) => p !== "");
  const token = bearer(new Set(protocols));
  if (token) headers.authorization = token;

  // In: each message is a line of the body. A call that stops taking requests pauses the body,
  // and so the socket: the client's messages wait in its own buffers, not here.
  const body = new PassThrough({ encoding: "utf8" });
  ws.on("message", (data: Buffer) => {
    if (!body.write(`${data.toString("utf8")}\n`)) ws.pause();
  });
  body.on("drain", () => { if (!body.isPaused()) ws.resume(); });
  body.on("pause", () => ws.pause());
  body.on("resume", () => ws.resume());
  ws.on("close", () => body.end());
  ws.on("error", () => ws.terminate());

  // Out: each line of the answer is a message. ws has no drain event: each send's
  // callback runs once its bytes are written out, and the waiters are checked then.
  const drainWaiters: (() => void)[] = [];
  const checkDrained = () => {
    if (ws.bufferedAmount > BUFFERED_BYTES_MAX && ws.readyState === WebSocket.OPEN) return;
    for (const fn of drainWaiters.splice(0)) fn();
  };
  let partial = "";
  const send = (chunk: string) => {
    const lines = (partial + chunk).split("\n");
    partial = lines.pop() ?? "";
    for (const line of lines) if (line !== "" && ws.readyState === WebSocket.OPEN) ws.send(line, checkDrained);
  };

  return {
    method: "POST", // etcd's proxy posts, whatever the upgrade's method
    path: req.url ?? "/",
    header: (name) => headers[name],
    headerNames: () => Object.keys(headers),
    body,
    respond: () => undefined, // a websocket carries no status: the answer's lines say what happened
    write: (chunk) => {
      send(chunk);
      return ws.bufferedAmount <= BUFFERED_BYTES_MAX;
    },
    end: (chunk) => {
      send(`${chunk ?? ""}\n`);
      if (ws.readyState === WebSocket.OPEN) ws.close(1000);
    },
    onDrain: (fn) => {
      drainWaiters.push(fn);
      checkDrained();
    },
    onClose: (fn) => { ws.once("close", fn); },
  };
}
