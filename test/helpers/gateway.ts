/**
 * A client for etcd's gRPC gateway (JSON over HTTP/1.1 at /v3/...): unary
 * POSTs, and streams whose request body stays open and whose answer is read
 * line by line.
 */
import * as http from "node:http";
import { WebSocket } from "ws";

export interface GatewayAnswer {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
  /** The body parsed, when it is JSON. */
  json: any; // eslint-disable-line @typescript-eslint/no-explicit-any
}

/** Base64 of a UTF-8 string, as the gateway carries bytes. */
export const b64 = (s: string): string => Buffer.from(s).toString("base64");

/** A request; `body`: an object (sent as JSON) or raw text. */
export function gatewayPost(endpoint: string, path: string, body: unknown, headers: Record<string, string> = {}, method = "POST"): Promise<GatewayAnswer> {
  const [host, port] = endpoint.split(":");
  return new Promise((resolve, reject) => {
    const req = http.request({ host, port: Number(port), path, method, headers: { "content-type": "application/json", ...headers } }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => (text += d));
      res.on("end", () => {
        let json: unknown;
        try {
          json = JSON.parse(text);
        } catch {
          json = undefined;
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
      });
    });
    req.on("error", reject);
    if (method === "POST") req.end(typeof body === "string" ? body : JSON.stringify(body));
    else req.end();
  });
}

/**
 * A streamed call: answers come back a JSON line at a time. etcd's Go
 * server reads no more of an HTTP/1.1 body once it has answered, so a test
 * that runs against etcd too sends its requests up front (`first`) and ends
 * the body; `send` adds requests to a body left open.
 */
export interface GatewayStream {
  send(request: unknown): void;
  /** The next answer line, parsed (fails after `waitMs`). */
  next(waitMs?: number): Promise<any>; // eslint-disable-line @typescript-eslint/no-explicit-any
  status(): Promise<number>;
  /** Stops reading the answer (HTTP's flow control then holds the server back), and starts again. */
  pause(): void;
  resume(): void;
  close(): void;
}

export function gatewayStream(endpoint: string, path: string, first: unknown[], o: { endBody: boolean }): GatewayStream {
  const [host, port] = endpoint.split(":");
  const lines: string[] = [];
  const waiting: ((line: string | Error) => void)[] = [];
  let buffered = "";
  let ended: Error | null = null;
  let statusResolve!: (s: number) => void;
  let response: http.IncomingMessage | null = null;
  let paused = false;
  const statusP = new Promise<number>((r) => (statusResolve = r));
  const deliver = (x: string | Error) => {
    const w = waiting.shift();
    if (w) w(x);
    else if (typeof x === "string") lines.push(x);
  };
  const req = http.request({ host, port: Number(port), path, method: "POST", headers: { "content-type": "application/json" } }, (res) => {
    statusResolve(res.statusCode ?? 0);
    response = res;
    if (paused) res.pause();
    res.setEncoding("utf8");
    res.on("data", (d: string) => {
      buffered += d;
      let nl: number;
      while ((nl = buffered.indexOf("\n")) >= 0) {
        deliver(buffered.slice(0, nl));
        buffered = buffered.slice(nl + 1);
      }
    });
    res.on("end", () => {
      ended = new Error(`stream ended${buffered ? `; left: ${buffered}` : ""}`);
      for (const w of waiting.splice(0)) w(ended);
    });
  });
  req.on("error", (e) => { for (const w of waiting.splice(0)) w(e); });
  for (const r of first) req.write(JSON.stringify(r));
  if (o.endBody) req.end();
  else req.flushHeaders();
  return {
    send: (r) => { req.write(JSON.stringify(r)); },
    next: (waitMs = 10_000) => new Promise((resolve, reject) => {
      const line = lines.shift();
      if (line !== undefined) return resolve(JSON.parse(line));
      if (ended) return reject(ended);
      const timer = setTimeout(() => reject(new Error(`no answer line within ${waitMs} ms`)), waitMs);
      waiting.push((x) => {
        clearTimeout(timer);
        if (x instanceof Error) reject(x);
        else resolve(JSON.parse(x));
      });
    }),
    status: () => statusP,
    pause: () => { paused = true; response?.pause(); },
    resume: () => { paused = false; response?.resume(); },
    close: () => { req.destroy(); },
  };
}

/** The gateway's websocket form: a message per request, a message per answer line, each parsed. */
export interface GatewaySocket {
  send(message: unknown): void;
  /** The next answer (rejects after 5 s without one, or once the socket has closed). */
  next(): Promise<any>; // eslint-disable-line @typescript-eslint/no-explicit-any
  /** Stops reading from the socket (the server's sends back up), and starts again. */
  pause(): void;
  resume(): void;
  /** Closes the socket; resolves once it is closed. */
  close(): Promise<void>;
}

export async function gatewayWebsocket(endpoint: string, path: string): Promise<GatewaySocket> {
  const ws = new WebSocket(`ws://${endpoint}${path}`);
  const inbox: unknown[] = [];
  const waiters: (() => void)[] = [];
  let closed = false;
  ws.on("message", (data) => {
    inbox.push(JSON.parse(String(data)));
    waiters.splice(0).forEach((w) => w());
  });
  ws.on("close", () => {
    closed = true;
    waiters.splice(0).forEach((w) => w());
  });
  await new Promise((resolve, reject) => { ws.once("open", resolve); ws.once("error", reject); });
  return {
    send: (message) => ws.send(JSON.stringify(message)),
    next: async () => {
      while (inbox.length === 0) {
        if (closed) throw new Error("websocket closed");
        await new Promise<void>((resolve, reject) => {
          waiters.push(resolve);
          setTimeout(() => reject(new Error("no websocket message in 5 s")), 5_000);
        });
      }
      return inbox.shift();
    },
    pause: () => ws.pause(),
    resume: () => ws.resume(),
    close: () => new Promise<void>((resolve) => {
      if (closed) return resolve();
      ws.once("close", () => resolve());
      ws.close();
    }),
  };
}
