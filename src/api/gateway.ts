/**
 * etcd's gRPC gateway: the v3 API as JSON over HTTP on the client URLs
 * (`curl -d '{"key":"Zm9v"}' http://127.0.0.1:2379/v3/kv/range`), which
 * etcd serves next to gRPC and clients such as etcd3gw use.
 *
 * As in etcd, the gateway is a proxy in front of the gRPC handlers, not a
 * second implementation of them: each HTTP request becomes a gRPC call on an
 * in-process HTTP/2 connection to this server (GrpcServer.connectInProcess),
 * so auth, limits, errors and headers are exactly the gRPC API's.
 * - Routes come from the `google.api.http` options in etcd's proto files
 *   (POST only; a path bound twice goes to its first method, as in etcd's
 *   mux, so /v3/maintenance/hash is Hash). `/v3beta/` is read as `/v3/`.
 * - Unary calls answer one JSON object; a failure answers grpc-gateway's
 *   `{"error","message","code"}` with the HTTP status its table gives.
 * - Streams (Watch, LeaseKeepAlive, Snapshot) read the body as a series of
 *   JSON requests and answer a line `{"result": ...}` per response, ending
 *   with `{"error": {...}}` if the call fails. The body's end is the
 *   client's half-close: a watch goes on until the client goes away, a
 *   keep-alive stream ends, as over gRPC. Unlike etcd's Go server (whose
 *   HTTP/1.1 reads no more of a body once it answers), requests may keep
 *   coming after the first answer.
 * - CORS headers (etcd's --cors) are added by GrpcServer, which answers
 *   OPTIONS itself.
 * - The token travels in the `Authorization` header (etcd reads it as the
 *   `authorization` metadata); `Grpc-Metadata-*` headers pass as metadata.
 */
import * as http from "node:http";
import * as http2 from "node:http2";
import * as protobuf from "protobufjs";
import { Readable } from "node:stream";
import { GrpcStatus } from "../errors";
import { CallStatus, FRAME_PREFIX_BYTES, StatusError, statusError } from "./grpc-call";
import { MessageReader } from "./grpc-reader";
import { JsonStreamSplitter, errorChunk, messageFromJson, messageToJson, parseJson, resultChunk } from "./gateway-json";
import { etcdRoot } from "./proto";

/** The services etcd 3.4 registers on its gateway. */
const GATEWAY_SERVICES = ["KV", "Watch", "Lease", "Cluster", "Maintenance", "Auth"].map((s) => `etcdserverpb.${s}`).concat("v3lockpb.Lock", "v3electionpb.Election");
/** Paths under these prefixes are the gateway's (etcd reads /v3beta/ as /v3/). */
const V3 = "/v3/";
const V3_BETA = "/v3beta/";

export interface GatewayRoute {
  grpcPath: string;
  requestType: protobuf.Type;
  responseType: protobuf.Type;
  requestStream: boolean;
  responseStream: boolean;
}

/** HTTP path -> the gRPC method it calls, from the proto files' google.api.http options. */
export function loadGatewayRoutes(): Map<string, GatewayRoute> {
  const root = etcdRoot();
  const routes = new Map<string, GatewayRoute>();
  for (const name of GATEWAY_SERVICES) {
    const service = root.lookupService(name);
    for (const method of service.methodsArray) {
      const route: GatewayRoute = {
        grpcPath: `/${name}/${method.name}`,
        requestType: method.resolvedRequestType!,
        responseType: method.resolvedResponseType!,
        requestStream: !!method.requestStream,
        responseStream: !!method.responseStream,
      };
      for (const p of httpPaths(method)) if (!routes.has(p)) routes.set(p, route);
    }
  }
  return routes;
}

/** The POST paths of a method's `(google.api.http)` option, additional bindings included. */
function httpPaths(method: protobuf.Method): string[] {
  const out: string[] = [];
  const visit = (rule: unknown) => {
    if (!rule || typeof rule !== "object") return;
    const r = rule as { post?: string; additional_bindings?: unknown };
    if (typeof r.post === "string") out.push(r.post);
    for (const extra of [r.additional_bindings].flat()) visit(extra);
  };
  for (const option of method.parsedOptions ?? []) visit((option as Record<string, unknown>)["(google.api.http)"]);
  return out;
}

/** One HTTP request and its answer, over HTTP/1.x or HTTP/2. */
export interface HttpExchange {
  method: string;
  path: string;
  header(name: string): string | undefined;
  /** Every header, lower-case names (for Grpc-Metadata-*). */
  headerNames(): string[];
  body: Readable;
  respond(status: number, headers: Record<string, string>): void;
  /** False when the client is not reading fast enough (wait for `drain`). */
  write(chunk: string): boolean;
  end(chunk?: string): void;
  onDrain(fn: () => void): void;
  /** Runs once, when the client goes away or the answer is over. */
  onClose(fn: () => void): void;
}

export function http1Exchange(req: http.IncomingMessage, res: http.ServerResponse): HttpExchange {
  return {
    method: req.method ?? "GET",
    path: req.url ?? "/",
    header: (name) => [req.headers[name]].flat()[0],
    headerNames: () => Object.keys(req.headers),
    body: req,
    respond: (status, headers) => { if (!res.headersSent) res.writeHead(status, headers); },
    write: (chunk) => res.write(chunk),
    end: (chunk) => { res.end(chunk); },
    onDrain: (fn) => { res.once("drain", fn); },
    onClose: (fn) => { res.once("close", fn); },
  };
}

/** `extra`: headers every answer carries (CORS). */
export function http2Exchange(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, extra: Record<string, string> = {}): HttpExchange {
  return {
    method: String(headers[":method"]),
    path: String(headers[":path"]),
    header: (name) => [headers[name]].flat()[0],
    headerNames: () => Object.keys(headers),
    body: stream,
    respond: (status, h) => { if (!stream.destroyed && !stream.headersSent) stream.respond({ ":status": status, ...extra, ...h }); },
    write: (chunk) => stream.destroyed || stream.write(chunk),
    end: (chunk) => { if (!stream.destroyed) stream.end(chunk); },
    onDrain: (fn) => { stream.once("drain", fn); },
    onClose: (fn) => { stream.once("close", fn); },
  };
}

/** grpc-gateway's table from gRPC code to HTTP status. */
const HTTP_STATUS: Record<number, number> = {
  [GrpcStatus.OK]: 200, [GrpcStatus.Canceled]: 408, [GrpcStatus.Unknown]: 500, [GrpcStatus.InvalidArgument]: 400,
  [GrpcStatus.DeadlineExceeded]: 504, [GrpcStatus.NotFound]: 404, [GrpcStatus.AlreadyExists]: 409,
  [GrpcStatus.PermissionDenied]: 403, [GrpcStatus.Unauthenticated]: 401, [GrpcStatus.ResourceExhausted]: 429,
  [GrpcStatus.FailedPrecondition]: 412, [GrpcStatus.Aborted]: 409, [GrpcStatus.OutOfRange]: 400,
  [GrpcStatus.Unimplemented]: 501, [GrpcStatus.Internal]: 500, [GrpcStatus.Unavailable]: 503, [GrpcStatus.DataLoss]: 500,
};
const httpStatusOf = (code: number): number => HTTP_STATUS[code] ?? 500;

const JSON_HEADERS = { "content-type": "application/json", "grpc-metadata-content-type": "application/grpc" };
const TEXT_HEADERS = { "content-type": "text/plain; charset=utf-8" };

export interface GatewayOptions {
  routes: Map<string, GatewayRoute>;
  /** A connection to this server's own gRPC handlers (kept, and dialled again once closed). */
  dial: () => http2.ClientHttp2Session;
  /** Whether the gRPC server serves a path (routes to methods it lacks answer 404, as etcd 3.4 has no such path). */
  serves: (grpcPath: string) => boolean;
  /** Largest request body read, and largest response message taken from the call. */
  bodyBytesMax: number;
}

export class Gateway {
  private session: http2.ClientHttp2Session | null = null;

  constructor(private readonly opts: GatewayOptions) {}

  /** Whether a request path is the gateway's. */
  static handles(requestPath: string): boolean {
    return requestPath.startsWith(V3) || requestPath.startsWith(V3_BETA);
  }

  /** Answers one HTTP request; never throws (a failure is the answer). */
  serve(ex: HttpExchange): void {
    const p = ex.path.split("?")[0].replace(V3_BETA, V3);
    const route = this.opts.routes.get(p);
    if (!route || !this.opts.serves(route.grpcPath)) return plain(ex, 404, "Not Found\n");
    if (ex.method !== "POST") return plain(ex, 405, "Method Not Allowed\n");
    if (route.requestStream || route.responseStream) this.stream(ex, route);
    else void this.unary(ex, route);
  }

  private async unary(ex: HttpExchange, route: GatewayRoute): Promise<void> {
    try {
      const text = (await readBody(ex.body, this.opts.bodyBytesMax)).trim();
      const request = route.requestType.encode(messageFromJson(route.requestType, text === "" ? {} : parseJson(text))).finish();
      const call = this.call(route, ex);
      ex.onClose(() => call.cancel()); // a client that goes away cancels what it waits for (a Lock, a Campaign)
      let response: Buffer | undefined;
      call.onMessage = (bytes) => { response ??= bytes; };
      call.send(request);
      call.finishSending();
      const status = await call.done;
      if (status.code !== GrpcStatus.OK) return failUnary(ex, status);
      if (!response) return failUnary(ex, { code: GrpcStatus.Internal, message: "no response message" });
      sendJson(ex, 200, messageToJson(route.responseType, route.responseType.decode(response)));
    } catch (e) {
      failUnary(ex, statusOf(e));
    }
  }

  private stream(ex: HttpExchange, route: GatewayRoute): void {
    const call = this.call(route, ex);
    let answered = false;
    const answer = () => {
      if (!answered) ex.respond(200, JSON_HEADERS);
      answered = true;
    };
    call.onMessage = (bytes) => {
      answer();
      if (!ex.write(resultChunk(messageToJson(route.responseType, route.responseType.decode(bytes))))) {
        call.pause();
        ex.onDrain(() => call.resume());
      }
    };
    void call.done.then((status) => {
      if (status.code === GrpcStatus.OK) {
        answer();
        return ex.end();
      }
      const httpStatus = httpStatusOf(status.code);
      if (!answered) ex.respond(httpStatus, JSON_HEADERS);
      answered = true;
      ex.end(errorChunk(status.code, status.message, httpStatus, http.STATUS_CODES[httpStatus] ?? ""));
    });
    ex.onClose(() => call.cancel());
    const splitter = new JsonStreamSplitter();
    // A server that stops reading requests (a keep-alive whose answers are not read) holds the body
    // back through HTTP/2's flow control, instead of the requests piling up here.
    const sendEach = (values: unknown[]) => {
      let taking = true;
      for (const v of values) taking = call.send(route.requestType.encode(messageFromJson(route.requestType, v)).finish()) && taking;
      if (!taking && !ex.body.isPaused()) {
        ex.body.pause();
        call.onDrain(() => ex.body.resume());
      }
    };
    ex.body.setEncoding("utf8");
    ex.body.on("data", (chunk: string) => {
      try {
        sendEach(splitter.push(chunk));
      } catch (e) {
        call.fail(statusOf(e));
      }
    });
    // The body's end is the client's half-close, as etcd's gateway forwards it: a watch stays open,
    // a keep-alive stream ends (each as its gRPC method does).
    ex.body.on("end", () => {
      if (splitter.partial) call.fail({ code: GrpcStatus.InvalidArgument, message: "request stream: the body ended inside a JSON value" });
      else call.finishSending();
    });
  }

  private call(route: GatewayRoute, ex: HttpExchange): InProcessCall {
    const metadata: Record<string, string> = {};
    const auth = ex.header("authorization");
    if (auth !== undefined) metadata.authorization = auth;
    for (const name of ex.headerNames()) {
      if (name.startsWith("grpc-metadata-")) metadata[name.slice("grpc-metadata-".length)] = ex.header(name) ?? "";
    }
    const timeout = ex.header("grpc-timeout");
    if (timeout !== undefined) metadata["grpc-timeout"] = timeout;
    return new InProcessCall(this.connection(), route.grpcPath, metadata, this.opts.bodyBytesMax);
  }

  private connection(): http2.ClientHttp2Session {
    if (!this.session || this.session.closed || this.session.destroyed) {
      this.session = this.opts.dial();
      this.session.on("error", () => undefined); // its calls see their streams close
    }
    return this.session;
  }

  close(): void {
    this.session?.close();
    this.session = null;
  }
}

/**
 * One gRPC call on the in-process connection: framed messages out, messages
 * and the status (from trailers, or a Trailers-Only answer) back.
 */
class InProcessCall {
  onMessage: (bytes: Buffer) => void = () => undefined;
  readonly done: Promise<CallStatus>;
  private readonly stream: http2.ClientHttp2Stream;
  private settle!: (s: CallStatus) => void;
  private status: CallStatus | null = null;

  constructor(session: http2.ClientHttp2Session, grpcPath: string, metadata: Record<string, string>, messageBytesMax: number) {
    this.done = new Promise((resolve) => (this.settle = resolve));
    this.stream = session.request({ ":method": "POST", ":path": grpcPath, "content-type": "application/grpc", te: "trailers", ...metadata });
    const reader = new MessageReader(messageBytesMax, "identity");
    const onHeaders = (h: http2.IncomingHttpHeaders) => {
      if (h["grpc-status"] !== undefined) this.status = { code: Number(h["grpc-status"]), message: percentDecode(String(h["grpc-message"] ?? "")) };
    };
    this.stream.on("response", onHeaders);
    this.stream.on("trailers", onHeaders);
    this.stream.on("data", (chunk: Buffer) => {
      try {
        for (const m of reader.push(chunk)) this.onMessage(m);
      } catch (e) {
        this.fail(statusOf(e));
      }
    });
    this.stream.on("error", () => undefined); // "close" follows
    this.stream.on("close", () => this.settle(this.status ?? { code: GrpcStatus.Unavailable, message: "the call ended without a status" }));
  }

  /** Sends one request message; false once the call is not taking them as fast (wait for `onDrain`). */
  send(message: Uint8Array): boolean {
    if (this.stream.destroyed || this.stream.writableEnded) return true;
    const framed = Buffer.allocUnsafe(FRAME_PREFIX_BYTES + message.length);
    framed[0] = 0;
    framed.writeUInt32BE(message.length, 1);
    framed.set(message, FRAME_PREFIX_BYTES);
    return this.stream.write(framed);
  }

  onDrain(fn: () => void): void {
    this.stream.once("drain", fn);
    this.stream.once("close", fn);
  }

  finishSending(): void {
    if (!this.stream.writableEnded) this.stream.end();
  }

  pause(): void {
    this.stream.pause();
  }

  resume(): void {
    this.stream.resume();
  }

  /** Ends the call with `status` (a bad request the gateway found itself). */
  fail(status: CallStatus): void {
    this.status ??= status;
    this.cancel();
  }

  cancel(): void {
    if (!this.stream.destroyed) this.stream.close(http2.constants.NGHTTP2_CANCEL);
  }
}

function statusOf(e: unknown): CallStatus {
  if (e instanceof StatusError) return e.status;
  return { code: GrpcStatus.Internal, message: (e as Error).message };
}

function failUnary(ex: HttpExchange, status: CallStatus): void {
  sendJson(ex, httpStatusOf(status.code), { error: status.message, message: status.message, code: status.code });
}

/** A whole JSON answer, with its length (as etcd's unary answers). */
function sendJson(ex: HttpExchange, status: number, value: unknown): void {
  const body = JSON.stringify(value);
  ex.respond(status, { ...JSON_HEADERS, "content-length": String(Buffer.byteLength(body)) });
  ex.end(body);
}

function plain(ex: HttpExchange, status: number, text: string): void {
  ex.body.resume(); // the body is not read: let it drain
  ex.respond(status, TEXT_HEADERS);
  ex.end(text);
}

/**
 * The whole body as text, refused past `bytesMax` (RESOURCE_EXHAUSTED, as an
 * over-large gRPC message). The rest of a refused body is read and dropped,
 * so that the connection stays up to carry the answer.
 */
function readBody(body: Readable, bytesMax: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let chunks: Buffer[] | null = [];
    let bytes = 0;
    body.on("data", (c: Buffer) => {
      if (!chunks) return;
      bytes += c.length;
      if (bytes <= bytesMax) chunks.push(c);
      else {
        chunks = null;
        reject(statusError(GrpcStatus.ResourceExhausted, `request body over ${bytesMax} bytes`));
      }
    });
    body.on("end", () => { if (chunks) resolve(Buffer.concat(chunks).toString("utf8")); });
    body.on("error", reject);
  });
}

/** grpc-message is percent-encoded; a malformed escape is kept as it came. */
function percentDecode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}
