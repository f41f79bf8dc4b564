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
import * as http2 from "node:http2";
import * as zlib from "node:zlib";
import { EventEmitter } from "node:events";
import { GrpcStatus } from "../errors";

/** How a method's messages are (de)serialized: @grpc/proto-loader's method definitions have this shape. */
export interface MethodDefinition {
  path: string;
  requestStream: boolean;
  responseStream: boolean;
  requestDeserialize(bytes: Buffer): unknown;
  responseSerialize(message: never): Buffer;
}

export type ServiceDefinition = Record<string, MethodDefinition>;

/** A status to end a call with: a gRPC code and its message. */
export interface CallStatus {
  code: number;
  message: string;
}

/**
 * A method's implementation. For a method whose request is one message, it
 * runs once that message has arrived (`call.request`); for a request stream,
 * at once, and the messages come as "data" events.
 */
export type Handler = (call: ServerCall) => void;

export type ServiceImplementation = Record<string, Handler>;

/** gRPC's length prefix: a compressed-flag byte, then the length as u32 big-endian. */
export const FRAME_PREFIX_BYTES = 5;

const RESPONSE_HEADERS = {
  ":status": 200,
  "content-type": "application/grpc+proto",
  "grpc-accept-encoding": "identity,deflate,gzip",
};

/** Units of a grpc-timeout header, in ms. */
const TIMEOUT_UNITS_MS: Record<string, number> = { H: 3_600_000, M: 60_000, S: 1_000, m: 1, u: 1e-3, n: 1e-6 };
/** Longer deadlines are not armed: Node's timers hold at most 2^31-1 ms (24.8 days). */
const TIMER_MS_MAX = 2 ** 31 - 1;

/**
 * One call, from its request headers to its status. Events:
 * - "data" (a request message, for request streams), "end" (the client has
 *   sent its last message);
 * - "drain" (the stream takes writes again after `write` answered false);
 * - "close", exactly once, when the call is over for any reason: its status
 *   sent, the client gone or cancelled, the deadline passed.
 */
export class ServerCall extends EventEmitter {
  /** The request, for methods whose request is one message. */
  request: unknown = undefined;
  /** Wire size of the request message (of the last one, for streams). */
  requestBytes = 0;
  private headersSent = false;
  private finished = false;
  private status: CallStatus | null = null;
  private deadline: NodeJS.Timeout | undefined;

  constructor(
    readonly path: string,
    private readonly stream: http2.ServerHttp2Stream,
    private readonly headers: http2.IncomingHttpHeaders,
    readonly method: MethodDefinition,
  ) {
    super();
  }

  /** A request metadata value (etcd clients send the auth token as "token"). */
  metadata(name: string): string | undefined {
    const v = this.headers[name];
    return Array.isArray(v) ? v[0] : v;
  }

  /** True once the call is over: nothing more goes out. */
  get closed(): boolean {
    return this.finished;
  }

  /** Answers a one-message response and OK. */
  reply(message: object): void {
    if (this.finished) return;
    if (this.stream.destroyed || this.stream.closed) return; // onStreamClosed reports it
    const bytes = this.encode(message);
    if (!bytes) return;
    this.sendHeaders();
    this.status = { code: GrpcStatus.OK, message: "" };
    this.finished = true;
    this.stream.end(frame(bytes));
  }

  /** Sends one response message (an object, or bytes already encoded); false once the stream is over its buffer. */
  write(message: object | Buffer): boolean {
    if (this.finished || this.stream.destroyed) return false;
    const bytes = this.encode(message);
    if (!bytes) return false;
    this.sendHeaders();
    return this.stream.write(frame(bytes));
  }

  /**
   * Writes bytes that are already whole gRPC frames (ResponseBatch joins a
   * turn's responses in one). `done` runs once HTTP/2 has taken them, or
   * at once if the call is over.
   */
  writeFrames(frames: Buffer, done: () => void): void {
    if (this.finished || this.stream.destroyed) {
      done();
      return;
    }
    this.sendHeaders();
    this.stream.write(frames, done);
  }

  /** Resolves once the stream takes writes again, or the call is over. */
  drained(): Promise<void> {
    if (this.finished) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        this.off("drain", done);
        this.off("close", done);
        resolve();
      };
      this.on("drain", done);
      this.on("close", done);
    });
  }

  /** Ends the call with OK after the messages written. */
  end(): void {
    this.finish({ code: GrpcStatus.OK, message: "" });
  }

  /** Ends the call with an error status (after any messages already written). */
  fail(status: CallStatus): void {
    this.finish(status);
  }

  /** Arms the deadline the client gave (grpc-timeout), if any. */
  armDeadline(): void {
    const header = this.metadata("grpc-timeout");
    if (header === undefined) return;
    const m = /^(\d{1,8})([HMSmun])$/.exec(header);
    if (!m) return; // malformed: no deadline (grpc-js does the same)
    const ms = Number(m[1]) * TIMEOUT_UNITS_MS[m[2]];
    if (ms > TIMER_MS_MAX) return;
    this.deadline = setTimeout(() => this.fail({ code: GrpcStatus.DeadlineExceeded, message: "context deadline exceeded" }), ms);
  }

  /** The stream closed (status sent, reset by the client, connection lost): HTTP/2 says so once. */
  onStreamClosed(): void {
    if (this.deadline) clearTimeout(this.deadline);
    this.finished = true;
    this.emit("close");
  }

  private finish(status: CallStatus): void {
    if (this.finished) return;
    const stream = this.stream;
    if (stream.destroyed || stream.closed) return; // onStreamClosed reports it
    if (!this.headersSent) {
      // Trailers-Only: one HEADERS frame carries the status.
      this.headersSent = true;
      this.finished = true;
      stream.respond({ ...RESPONSE_HEADERS, ...statusTrailers(status) }, { endStream: true });
      return;
    }
    this.status = status;
    this.finished = true;
    stream.end();
  }

  private sendHeaders(): void {
    if (this.headersSent) return;
    this.headersSent = true;
    this.stream.respond(RESPONSE_HEADERS, { waitForTrailers: true });
    this.stream.once("wantTrailers", () => {
      const status = this.status ?? { code: GrpcStatus.OK, message: "" };
      this.finished = true;
      this.stream.sendTrailers(statusTrailers(status));
    });
  }

  /** The message's bytes; a message the method's type cannot encode ends the call with INTERNAL (undefined). */
  private encode(message: object | Buffer): Buffer | undefined {
    if (Buffer.isBuffer(message)) return message;
    try {
      return this.method.responseSerialize(message as never);
    } catch (e) {
      this.fail({ code: GrpcStatus.Internal, message: `mergekv: internal error: cannot encode the response: ${(e as Error).message}` });
      return undefined;
    }
  }
}

/** The frame for one message: prefix (not compressed) and bytes. */
function frame(message: Buffer): Buffer {
  const out = Buffer.allocUnsafe(FRAME_PREFIX_BYTES + message.length);
  out[0] = 0;
  out.writeUInt32BE(message.length, 1);
  message.copy(out, FRAME_PREFIX_BYTES);
  return out;
}

function statusTrailers(s: CallStatus): Record<string, string | number> {
  return s.message === "" ? { "grpc-status": s.code } : { "grpc-status": s.code, "grpc-message": percentEncoded(s.message) };
}

/** grpc-message: bytes outside printable ASCII, and '%', as %XX of their UTF-8. */
export function percentEncoded(text: string): string {
  if (/^[\x20-\x24\x26-\x7e]*$/.test(text)) return text;
  let out = "";
  for (const b of Buffer.from(text, "utf8")) {
    out += b >= 0x20 && b <= 0x7e && b !== 0x25 ? String.fromCharCode(b) : `%${b.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  return out;
}

/**
 * Cuts a request stream's bytes into messages. One call's; the prefix is
 * checked as soon as it arrives, so a message over the limit is refused
 * without being buffered.
 */
class MessageReader {
  private chunks: Buffer[] = [];
  private bytes = 0;

  constructor(private readonly receiveBytesMax: number, private readonly encoding: string) {}

  /** True when bytes of an unfinished message are held. */
  get partial(): boolean {
    return this.bytes > 0;
  }

  /** Adds a chunk; returns the whole messages it completes (throws a CallStatus on a bad one). */
  push(chunk: Buffer): Buffer[] {
    let buf: Buffer;
    if (this.bytes === 0) buf = chunk;
    else {
      this.chunks.push(chunk);
      buf = Buffer.concat(this.chunks, this.bytes + chunk.length);
    }
    this.chunks = [];
    this.bytes = 0;
    const out: Buffer[] = [];
    let at = 0;
    while (buf.length - at >= FRAME_PREFIX_BYTES) {
      const length = buf.readUInt32BE(at + 1);
      if (length > this.receiveBytesMax) {
        throw status(GrpcStatus.ResourceExhausted, `grpc: received message larger than max (${length} vs. ${this.receiveBytesMax})`);
      }
      if (buf.length - at - FRAME_PREFIX_BYTES < length) break;
      const message = buf.subarray(at + FRAME_PREFIX_BYTES, at + FRAME_PREFIX_BYTES + length);
      out.push(buf[at] === 0 ? message : this.decompress(message));
      at += FRAME_PREFIX_BYTES + length;
    }
    if (at < buf.length) {
      this.chunks.push(buf.subarray(at));
      this.bytes = buf.length - at;
    }
    return out;
  }

  private decompress(message: Buffer): Buffer {
    let out: Buffer;
    try {
      if (this.encoding === "gzip") out = zlib.gunzipSync(message, { maxOutputLength: this.receiveBytesMax });
      else if (this.encoding === "deflate") out = zlib.inflateSync(message, { maxOutputLength: this.receiveBytesMax });
      else if (this.encoding === "identity") throw status(GrpcStatus.Internal, "grpc: compressed flag set with identity or empty encoding");
      else throw status(GrpcStatus.Unimplemented, `grpc: Decompressor is not installed for grpc-encoding "${this.encoding}"`);
    } catch (e) {
      if (isCallStatus(e)) throw e;
      throw status(GrpcStatus.ResourceExhausted, `grpc: received message after decompression larger than max or corrupt: ${(e as Error).message}`);
    }
    return out;
  }
}

function status(code: number, message: string): CallStatus {
  return { code, message };
}

function isCallStatus(e: unknown): e is CallStatus {
  return typeof e === "object" && e !== null && typeof (e as CallStatus).code === "number" && !(e instanceof Error);
}

export interface ServerOptions {
  /** Largest request message read (bigger ones end the call with RESOURCE_EXHAUSTED). */
  receiveBytesMax: number;
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

export class GrpcServer {
  private readonly routes = new Map<string, Route>();
  private readonly services = new Set<string>();
  private readonly listeners: http2.Http2Server[] = [];
  private readonly sessions = new Set<http2.ServerHttp2Session>();

  constructor(private readonly opts: ServerOptions) {}

  addService(service: ServiceDefinition, impl: ServiceImplementation): void {
    for (const [name, method] of Object.entries(service)) {
      const handler = impl[name];
      if (!handler) continue; // answered UNIMPLEMENTED
      this.routes.set(method.path, { method, handler });
      this.services.add(method.path.slice(1, method.path.lastIndexOf("/")));
    }
  }

  /** Listens on host:port (port 0: any free one), with TLS when given; resolves to the port. */
  listen(host: string, port: number, tls?: TlsFiles): Promise<number> {
    const server = tls
      ? http2.createSecureServer({ ...HTTP2_OPTIONS, cert: tls.cert, key: tls.key, ca: tls.ca, requestCert: tls.clientCertAuth, rejectUnauthorized: tls.clientCertAuth })
      : http2.createServer(HTTP2_OPTIONS);
    server.on("session", (s: http2.ServerHttp2Session) => {
      this.sessions.add(s);
      s.on("close", () => this.sessions.delete(s));
      s.on("error", () => undefined); // its streams see "close"; nothing else to do
    });
    server.on("stream", (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders) => this.onStream(stream, headers));
    if (tls) server.on("secureConnection", (socket) => socket.on("error", () => undefined));
    return new Promise((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, host, () => {
        server.off("error", reject);
        this.listeners.push(server);
        resolve((server.address() as { port: number }).port);
      });
    });
  }

  /**
   * Stops accepting connections and asks every connection to finish (GOAWAY:
   * open calls complete, no new ones start); resolves once all have closed.
   */
  shutdown(): Promise<void> {
    for (const l of this.listeners) l.close();
    const open = [...this.sessions].map((s) => new Promise<void>((resolve) => {
      if (s.closed || s.destroyed) return resolve();
      s.close(resolve);
    }));
    return Promise.all(open).then(() => undefined);
  }

  /** Closes every connection now, whatever is in flight. */
  forceShutdown(): void {
    for (const l of this.listeners) l.close();
    for (const s of this.sessions) s.destroy();
    this.sessions.clear();
  }

  private onStream(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders): void {
    stream.on("error", () => undefined); // followed by "close"
    const contentType = headers["content-type"];
    if (typeof contentType !== "string" || !contentType.startsWith("application/grpc")) {
      stream.respond({ ":status": 415 }, { endStream: true });
      return;
    }
    const path = String(headers[":path"]);
    const route = this.routes.get(path);
    if (!route) {
      stream.respond({ ...RESPONSE_HEADERS, ...statusTrailers(status(GrpcStatus.Unimplemented, this.unknown(path))) }, { endStream: true });
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
        if (reader.partial) call.fail(status(GrpcStatus.Internal, "grpc: request ended inside a message"));
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
      if (!started) call.fail(status(GrpcStatus.Internal, "grpc: request ended without a message"));
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
          throw status(GrpcStatus.Internal, `grpc: error unmarshalling request: ${(e as Error).message}`);
        }
        call.requestBytes = bytes.length;
        each(message);
        if (call.closed) return;
      }
    } catch (e) {
      if (!isCallStatus(e)) throw e;
      call.fail(e);
    }
  }

  /** Go gRPC's text for a path no handler serves. */
  private unknown(path: string): string {
    const slash = path.lastIndexOf("/");
    const service = path.slice(1, slash);
    return this.services.has(service) ? `unknown method ${path.slice(slash + 1)} for service ${service}` : `unknown service ${service}`;
  }
}
