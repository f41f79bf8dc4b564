/**
 * One gRPC call on its HTTP/2 stream, as the handlers see it: the request's
 * metadata, the responses, the status. The framing of responses (a 5-byte
 * prefix, never compressed: a server may always answer identity), headers,
 * trailers with grpc-status and a percent-encoded grpc-message, and
 * Trailers-Only when an error comes before any message.
 */
import * as http2 from "node:http2";
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

/** A status to end a call with: a gRPC code and its message. */
export interface CallStatus {
  code: number;
  message: string;
}

/** A call's failure as a throwable error: its status is what the call ends with. */
export class StatusError extends Error {
  constructor(readonly status: CallStatus) {
    super(status.message);
    this.name = "StatusError";
  }
}

export function statusError(code: number, message: string): StatusError {
  return new StatusError({ code, message });
}

/** gRPC's length prefix: a compressed-flag byte, then the length as u32 big-endian. */
export const FRAME_PREFIX_BYTES = 5;

export const RESPONSE_HEADERS = {
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
  /** Reading requests is paused until the stream drains (holdRequestsUntilDrained). */
  private holding = false;
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

  /**
   * Stops reading the client's requests until `resumeRequests`: a client
   * that keeps sending without reading what it is answered then meets
   * HTTP/2's flow control, instead of growing the responses we buffer.
   */
  pauseRequests(): void {
    this.stream.pause();
  }

  resumeRequests(): void {
    if (!this.finished) this.stream.resume();
  }

  /** Pauses reading requests until the responses written so far drain (after a `write` answered false). */
  holdRequestsUntilDrained(): void {
    if (this.holding || this.finished) return;
    this.holding = true;
    this.pauseRequests();
    void this.drained().then(() => {
      this.holding = false;
      this.resumeRequests();
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

export function statusTrailers(s: CallStatus): Record<string, string | number> {
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
