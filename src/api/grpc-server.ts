/**
 * A gRPC server on node:http2: the part of the protocol etcd's clients use
 * (https://github.com/grpc/grpc/blob/master/doc/PROTOCOL-HTTP2.md), served
 * with as little work per call as the protocol allows.
 *
 * Why not grpc-js's server: per unary call, a no-op server on grpc-js cost
 * 100 µs of CPU against 63 µs on node:http2 (16 loops of puts, session 6 of
 * docs/benchmarks.md), as much as etcd spends on a whole put. grpc-js runs
 * each call through interceptors, filters, promise-based decompression and an
 * object-mode stream per message; none of it is needed here.
 *
 * What a call gets:
 * - requests: POST with content-type application/grpc[+…], messages
 *   length-prefixed, identity, gzip or deflate (grpc-encoding); a message
 *   over `receiveBytesMax` is refused from its prefix, before it is read;
 * - grpc-timeout: the call ends with DEADLINE_EXCEEDED once it has passed;
 * - responses: headers, messages, trailers with grpc-status and a
 *   percent-encoded grpc-message; an error before any message is one
 *   Trailers-Only HEADERS frame;
 * - an unknown service or method: UNIMPLEMENTED, with Go gRPC's text (what
 *   etcd answers); a content type other than gRPC's: HTTP 415.
 * Responses are never compressed (a server may always answer identity).
 */
import * as http from "node:http";
import * as http2 from "node:http2";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { mkdtempSync, rmSync } from "node:fs";
import { GrpcStatus } from "../errors";
import { HttpEndpoints, http1Listener } from "../metrics";
import { MethodDefinition, RESPONSE_HEADERS, ServerCall, StatusError, statusError, statusTrailers } from "./grpc-call";
import { MessageReader } from "./grpc-reader";
import { Gateway, GatewayRoute, http1Exchange, http2Exchange } from "./gateway";
import { GatewayWebsockets } from "./gateway-websocket";
import { Cors } from "./cors";

export type ServiceDefinition = Record<string, MethodDefinition>;

/**
 * A method's implementation. For a method whose request is one message, it
 * runs once that message has arrived (`call.request`); for a request stream,
 * at once, and the messages come as "data" events.
 */
export type Handler = (call: ServerCall) => void;

export type ServiceImplementation = Record<string, Handler>;

export interface ServerOptions {
  /** Largest request message read (bigger ones end the call with RESOURCE_EXHAUSTED). */
  receiveBytesMax: number;
  /**
   * Plain GETs (not gRPC) on the same listeners, as etcd answers /health,
   * /metrics and /version next to gRPC: over HTTP/2, and over HTTP/1.x (told
   * apart by the connection's first bytes, or over TLS by ALPN).
   */
  http?: HttpEndpoints;
  /** etcd's gRPC gateway (JSON over HTTP at /v3/..., see gateway.ts) on the same listeners; none when not given. */
  gateway?: Map<string, GatewayRoute>;
  /** etcd's --cors for the plain HTTP side: allowed origins ("*": any); default any, as etcd. */
  cors?: readonly string[];
}

/** TLS for a listener (http2.createSecureServer's options). */
export interface TlsFiles {
  cert: Buffer;
  key: Buffer;
  ca?: Buffer;
  /** Require and verify a client certificate (etcd's --client-cert-auth). */
  clientCertAuth: boolean;
}

interface Route {
  method: MethodDefinition;
  handler: Handler;
}

/**
 * HTTP/2 settings, as grpc-js's server set them: no cap on the memory a
 * session may buffer (node's default, 10 MB, refuses new streams once a busy
 * watch connection holds that much queued), and no cap on header blocks.
 */
const HTTP2_OPTIONS: http2.ServerOptions = { maxSessionMemory: Number.MAX_SAFE_INTEGER, maxSendHeaderBlockLength: Number.MAX_SAFE_INTEGER };

/** The first bytes of every HTTP/2 connection (RFC 9113, section 3.4); an HTTP/1.x request starts with its method instead. */
const HTTP2_PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
/** Enough of it to tell the two apart ("PRI " against "POST", "PUT ", "PATCH"). */
const SNIFF_BYTES = 4;

/**
 * Hands a new connection to `http2` or `http1` by its first bytes, which go
 * back into the socket for the chosen side to read (an HTTP/2 session takes
 * what the socket has buffered, so the socket stays paused for it).
 */
function sniff(socket: net.Socket, toHttp2: (s: net.Socket) => void, toHttp1: (s: net.Socket) => void): void {
  let seen: Buffer = Buffer.alloc(0);
  const fail = () => socket.destroy();
  const onData = (chunk: Buffer) => {
    seen = seen.length === 0 ? chunk : Buffer.concat([seen, chunk]);
    const head = seen.subarray(0, SNIFF_BYTES);
    const maybeHttp2 = head.equals(HTTP2_PREFACE.subarray(0, head.length));
    if (maybeHttp2 && seen.length < SNIFF_BYTES) return; // too short to tell yet
    socket.off("data", onData);
    socket.off("error", fail);
    socket.pause();
    socket.unshift(seen);
    if (maybeHttp2) toHttp2(socket);
    else {
      toHttp1(socket);
      socket.resume();
    }
  };
  socket.on("error", fail);
  socket.on("data", onData);
}

export class GrpcServer {
  private readonly routes = new Map<string, Route>();
  private readonly services = new Set<string>();
  private readonly listeners: net.Server[] = [];
  /** The HTTP/1.x side of cleartext listeners (see listen). */
  private readonly http1Servers: http.Server[] = [];
  private readonly sessions = new Set<http2.ServerHttp2Session>();
  private readonly gateway: Gateway | null;
  /** The gateway's websocket form (HTTP/1.1 upgrades on its paths). */
  private readonly websockets: GatewayWebsockets | null;
  /** Serves the in-process connections (connectInProcess); made on first use. */
  /** The gateway's connection point (connectInProcess). */
  private inProcess: { h2: http2.Http2Server; listener: net.Server; dir: string; socketPath: string } | null = null;
  private readonly cors: Cors;
  /** The plain GETs over HTTP/1.x (opts.http). */
  private readonly http1Endpoints: http.RequestListener | null;

  constructor(private readonly opts: ServerOptions) {
    this.cors = new Cors(opts.cors ?? ["*"]);
    this.http1Endpoints = opts.http ? http1Listener(opts.http) : null;
    this.gateway = opts.gateway
      ? new Gateway({ routes: opts.gateway, dial: () => this.connectInProcess(), serves: (p) => this.routes.has(p), bodyBytesMax: opts.receiveBytesMax })
      : null;
    const gateway = this.gateway;
    this.websockets = gateway ? new GatewayWebsockets((ex) => gateway.serve(ex), opts.receiveBytesMax) : null;
  }

  addService(service: ServiceDefinition, impl: ServiceImplementation): void {
    for (const [name, method] of Object.entries(service)) {
      const handler = impl[name];
      if (!handler) continue; // answered UNIMPLEMENTED
      this.routes.set(method.path, { method, handler });
      this.services.add(method.path.slice(1, method.path.lastIndexOf("/")));
    }
  }

  /**
   * Listens on host:port (port 0: any free one), with TLS when given;
   * resolves to the port. With `opts.http`, connections that speak HTTP/1.x
   * go to it too.
   */
  listen(host: string, port: number, tls?: TlsFiles): Promise<number> {
    const h2 = this.http2Server(tls);
    if (tls) h2.on("secureConnection", (socket) => socket.on("error", () => undefined));
    let server: net.Server = h2;
    if (this.opts.http || this.gateway) {
      const h1 = http.createServer((req, res) => this.onHttp1(req, res));
      h1.on("upgrade", (req: http.IncomingMessage, socket: net.Socket, head: Buffer) => this.onUpgrade(req, socket, head));
      this.http1Servers.push(h1);
      // Over TLS a client that did not ask for h2 by ALPN speaks HTTP/1.x; in clear text, sniff its first bytes.
      if (tls) h2.on("unknownProtocol", (socket: net.Socket) => h1.emit("connection", socket));
      else server = net.createServer({ noDelay: true }, (socket) => sniff(socket, (s) => h2.emit("connection", s), (s) => h1.emit("connection", s)));
    }
    return new Promise((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, host, () => {
        server.off("error", reject);
        this.listeners.push(server);
        resolve((server.address() as { port: number }).port);
      });
    });
  }

  private http2Server(tls?: TlsFiles): http2.Http2Server {
    const h2 = tls
      ? http2.createSecureServer({ ...HTTP2_OPTIONS, cert: tls.cert, key: tls.key, ca: tls.ca, requestCert: tls.clientCertAuth, rejectUnauthorized: tls.clientCertAuth })
      : http2.createServer(HTTP2_OPTIONS);
    h2.on("session", (s: http2.ServerHttp2Session) => {
      this.sessions.add(s);
      s.on("close", () => this.sessions.delete(s));
      s.on("error", () => undefined); // its streams see "close"; nothing else to do
    });
    h2.on("stream", (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders) => this.onStream(stream, headers));
    return h2;
  }

  /**
   * A client session on a connection that never leaves the machine, served
   * like any other (the gateway's gRPC calls go through it): a Unix socket
   * in a directory of its own that only this user can enter, made on first
   * use. Not a pair of in-memory streams, as it first was: node 20's HTTP/2
   * over a JavaScript stream aborts the process (`Assertion failed:
   * (stream_buf_.base) != nullptr` in ConsumeHTTP2Data, after a write) when
   * flow control holds a session's reading back, which a gateway client that
   * stops reading does (found by the websocket back-pressure test).
   */
  connectInProcess(): http2.ClientHttp2Session {
    if (!this.inProcess) {
      const h2 = this.http2Server();
      const dir = mkdtempSync(path.join(os.tmpdir(), "mergekv-gateway-")); // mode 0700
      const socketPath = path.join(dir, "grpc.sock");
      const listener = net.createServer((socket) => h2.emit("connection", socket));
      listener.listen(socketPath); // bound before this returns: a connect from now on reaches it
      this.inProcess = { h2, listener, dir, socketPath };
    }
    const { socketPath } = this.inProcess;
    return http2.connect("http://in-process", { createConnection: () => net.connect(socketPath) });
  }

  /** Closes the gateway's own listener and removes its directory. */
  private closeInProcess(): void {
    if (!this.inProcess) return;
    this.inProcess.listener.close();
    rmSync(this.inProcess.dir, { recursive: true, force: true });
    this.inProcess = null;
  }

  /** An HTTP/1.1 upgrade: the gateway's websocket form on its paths; anything else gets etcd's 404. */
  private onUpgrade(req: http.IncomingMessage, socket: net.Socket, head: Buffer): void {
    socket.on("error", () => undefined);
    if (this.websockets && Gateway.handles(req.url ?? "/")) return this.websockets.upgrade(req, socket, head);
    socket.end("HTTP/1.1 404 Not Found\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: 19\r\nconnection: close\r\n\r\n404 page not found\n");
  }

  private onHttp1(req: http.IncomingMessage, res: http.ServerResponse): void {
    for (const [name, value] of Object.entries(this.cors.headers(req.headers.origin))) res.setHeader(name, value);
    if (req.method === "OPTIONS") {
      res.writeHead(200, { "content-length": "0" });
      res.end();
      return;
    }
    if (this.gateway && Gateway.handles(req.url ?? "/")) this.gateway.serve(http1Exchange(req, res));
    else if (this.http1Endpoints) this.http1Endpoints(req, res);
    else {
      res.writeHead(404, { "content-type": "text/plain; charset=utf-8" });
      res.end("404 page not found\n");
    }
  }

  /**
   * Stops accepting connections and asks every connection to finish (GOAWAY:
   * open calls complete, no new ones start); resolves once all have closed.
   */
  shutdown(): Promise<void> {
    this.gateway?.close();
    this.websockets?.close();
    this.closeInProcess();
    for (const l of this.listeners) l.close();
    for (const h of this.http1Servers) h.closeAllConnections();
    const open = [...this.sessions].map((s) => new Promise<void>((resolve) => {
      if (s.closed || s.destroyed) return resolve();
      s.close(resolve);
    }));
    return Promise.all(open).then(() => undefined);
  }

  /** Closes every connection now, whatever is in flight. */
  forceShutdown(): void {
    this.gateway?.close();
    this.websockets?.close();
    this.closeInProcess();
    for (const l of this.listeners) l.close();
    for (const h of this.http1Servers) h.closeAllConnections();
    for (const s of this.sessions) s.destroy();
    this.sessions.clear();
  }

  private answerHttp(stream: http2.ServerHttp2Stream, path: string, endpoints: HttpEndpoints, cors: Record<string, string>): void {
    void endpoints(path).then((a) => {
      if (stream.closed || stream.destroyed) return;
      stream.respond({ ":status": a.status, "content-type": a.contentType, ...cors });
      stream.end(a.body);
    });
  }

  private onStream(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders): void {
    stream.on("error", () => undefined); // followed by "close"
    const contentType = headers["content-type"];
    if (typeof contentType !== "string" || !contentType.startsWith("application/grpc")) {
      const cors = this.cors.headers([headers.origin].flat()[0]);
      if (headers[":method"] === "OPTIONS") stream.respond({ ":status": 200, ...cors }, { endStream: true });
      else if (this.gateway && Gateway.handles(String(headers[":path"]))) this.gateway.serve(http2Exchange(stream, headers, cors));
      else if (this.opts.http && headers[":method"] === "GET") this.answerHttp(stream, String(headers[":path"]), this.opts.http, cors);
      else stream.respond({ ":status": 415, ...cors }, { endStream: true });
      return;
    }
    const path = String(headers[":path"]);
    const route = this.routes.get(path);
    if (!route) {
      stream.respond({ ...RESPONSE_HEADERS, ...statusTrailers({ code: GrpcStatus.Unimplemented, message: this.unknown(path) }) }, { endStream: true });
      return;
    }
    const call = new ServerCall(path, stream, headers, route.method);
    call.armDeadline();
    stream.on("close", () => call.onStreamClosed());
    if (route.method.responseStream) stream.on("drain", () => call.emit("drain"));
    const reader = new MessageReader(this.opts.receiveBytesMax, String(headers["grpc-encoding"] ?? "identity"));
    const { method, handler } = route;
    if (method.requestStream) {
      handler(call);
      stream.on("data", (chunk: Buffer) => this.read(call, reader, chunk, (m) => call.emit("data", m)));
      stream.on("end", () => {
        if (reader.partial) call.fail({ code: GrpcStatus.Internal, message: "grpc: request ended inside a message" });
        else if (!call.closed) call.emit("end");
      });
      return;
    }
    let started = false;
    stream.on("data", (chunk: Buffer) => this.read(call, reader, chunk, (m) => {
      if (started) return; // a second message on a one-message request: ignored, as Go gRPC's server does
      started = true;
      call.request = m;
      handler(call);
    }));
    stream.on("end", () => {
      if (!started) call.fail({ code: GrpcStatus.Internal, message: "grpc: request ended without a message" });
    });
  }

  /** Decodes the messages a chunk completes and passes each on; a bad one ends the call. */
  private read(call: ServerCall, reader: MessageReader, chunk: Buffer, each: (m: unknown) => void): void {
    if (call.closed) return;
    try {
      for (const bytes of reader.push(chunk)) {
        let message: unknown;
        try {
          message = call.method.requestDeserialize(bytes);
        } catch (e) {
          throw statusError(GrpcStatus.Internal, `grpc: error unmarshalling request: ${(e as Error).message}`);
        }
        call.requestBytes = bytes.length;
        each(message);
        if (call.closed) return;
      }
    } catch (e) {
      if (!(e instanceof StatusError)) throw e;
      call.fail(e.status);
    }
  }

  /** Go gRPC's text for a path no handler serves. */
  private unknown(path: string): string {
    const slash = path.lastIndexOf("/");
    const service = path.slice(1, slash);
    return this.services.has(service) ? `unknown method ${path.slice(slash + 1)} for service ${service}` : `unknown service ${service}`;
  }
}

