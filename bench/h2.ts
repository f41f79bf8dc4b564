/**
 * A minimal gRPC-over-HTTP/2 unary client and server on node:http2, with the
 * etcd messages encoded and decoded by the same proto-loader codecs grpc-js
 * uses. Why: on this 2-core machine every CPU microsecond the load generator
 * spends is taken from the server under test, and a grpc-js unary call costs
 * its client 200-700 µs of CPU here (see the ceiling phase); this costs a
 * fraction of that. The wire is plain gRPC (length-prefixed messages,
 * grpc-status trailers), which etcd and mergekv both speak.
 */
import * as http2 from "node:http2";

const { NGHTTP2_CANCEL } = http2.constants;
/** How often overdue calls are looked for. */
const WATCHDOG_INTERVAL_MS = 1_000;
/** A response bigger than this is refused (the benchmark's are tiny). */
const RESPONSE_BYTES_MAX = 16 * 1024 * 1024;

export class GrpcError extends Error {
  constructor(readonly code: number, message: string) {
    super(`grpc status ${code}: ${message}`);
  }
}

/** 5-byte gRPC message prefix (uncompressed, big-endian length) + message. */
export function frame(message: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(5 + message.length);
  out[0] = 0;
  out.writeUInt32BE(message.length, 1);
  out.set(message, 5);
  return out;
}

/** The one message of a unary response (empty buffer for an empty message). */
export function unframe(data: Buffer): Buffer {
  if (data.length < 5) throw new GrpcError(13, `response of ${data.length} bytes has no gRPC frame`);
  if (data[0] !== 0) throw new GrpcError(13, "compressed responses are not supported");
  const len = data.readUInt32BE(1);
  if (len + 5 > data.length) throw new GrpcError(13, `truncated response (${data.length - 5} of ${len} bytes)`);
  return data.subarray(5, 5 + len);
}

/**
 * A stream's body as gRPC messages: feed it each chunk; `each` gets every
 * whole message (its bytes are buf[start, end)) as soon as it is in.
 */
export function messageSplitter(each: (buf: Buffer, start: number, end: number) => void): (chunk: Buffer) => void {
  let buf: Buffer = Buffer.alloc(0);
  return (chunk) => {
    buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
    let off = 0;
    while (buf.length - off >= 5) {
      const len = buf.readUInt32BE(off + 1);
      if (buf.length - off - 5 < len) break;
      each(buf, off + 5, off + 5 + len);
      off += 5 + len;
    }
    buf = buf.subarray(off);
  };
}

/** One HTTP/2 connection issuing unary gRPC calls; calls time out through one shared timer. */
/** The grpc-status and grpc-message of a call, from its headers or trailers (trailers-only responses put them in headers). */
export class GrpcStatus {
  status: string | undefined;
  message = "";

  read(h: http2.IncomingHttpHeaders): void {
    if (h["grpc-status"] === undefined) return;
    this.status = String(h["grpc-status"]);
    this.message = decodeURIComponent(String(h["grpc-message"] ?? ""));
  }
}

/** Settles a unary call once its stream closed: its grpc-status, or its one decoded response. */
export function settleUnary(stream: { rstCode?: number }, result: GrpcStatus, chunks: Buffer[], resolve: (b: Buffer) => void, reject: (e: Error) => void): void {
  const { status, message } = result;
  if (status === undefined) reject(new GrpcError(stream.rstCode === NGHTTP2_CANCEL ? 1 : 14, `stream closed without status (rst ${stream.rstCode})`));
  else if (status !== "0") reject(new GrpcError(Number(status), message));
  else {
    try {
      resolve(unframe(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks)));
    } catch (e) {
      reject(e as Error);
    }
  }
}

export class H2Channel {
  private readonly session: http2.ClientHttp2Session;
  private readonly inflight = new Map<http2.ClientHttp2Stream, number>();
  private readonly timer: NodeJS.Timeout;

  constructor(endpoint: string, private readonly timeoutMs: number) {
    this.session = http2.connect(`http://${endpoint}`);
    this.session.on("error", () => undefined); // surfaced per call
    this.timer = setInterval(() => this.sweep(), WATCHDOG_INTERVAL_MS);
    this.timer.unref();
  }

  /** Sends one framed request to `path` ("/etcdserverpb.KV/Put"); resolves to the response message bytes. */
  unary(path: string, request: Uint8Array): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      let stream: http2.ClientHttp2Stream;
      try {
        stream = this.session.request({ ":method": "POST", ":path": path, "content-type": "application/grpc", te: "trailers" });
      } catch (e) {
        reject(e);
        return;
      }
      this.inflight.set(stream, performance.now());
      const chunks: Buffer[] = [];
      let bytes = 0;
      const result = new GrpcStatus();
      const onHeaders = (h: http2.IncomingHttpHeaders) => result.read(h);
      stream.on("response", onHeaders); // trailers-only responses carry the status here
      stream.on("trailers", onHeaders);
      stream.on("data", (c: Buffer) => {
        bytes += c.length;
        if (bytes > RESPONSE_BYTES_MAX) stream.close(NGHTTP2_CANCEL);
        else chunks.push(c);
      });
      stream.on("error", () => undefined); // reported through close below
      stream.on("close", () => {
        this.inflight.delete(stream);
        settleUnary(stream, result, chunks, resolve, reject);
      });
      stream.end(frame(request));
    });
  }

  private sweep(): void {
    const overdue = performance.now() - this.timeoutMs;
    for (const [stream, started] of this.inflight) if (started < overdue) stream.close(NGHTTP2_CANCEL);
  }

  close(): void {
    clearInterval(this.timer);
    this.session.close();
  }
}
