/**
 * A server stream's responses written as gRPC frames straight onto its HTTP/2
 * stream, every response of one event-loop turn in one write.
 *
 * Why: grpc-js writes one message per HTTP/2 write, through an object-mode
 * stream that starts the next write only when the previous one's callback
 * has run. A put watched 1,000 times made 1,000 writes, each its own trip
 * through two stream layers and the event loop; the watch fan-out spent
 * 15-20 µs per message and delivered in bursts spread over many turns. Here
 * one put makes one write per stream: the responses' frames (a 5-byte gRPC
 * prefix each, uncompressed) joined into one buffer.
 *
 * The HTTP/2 stream is grpc-js's own (`call.call.stream` in grpc-js 1.x, not
 * public API); the response headers are sent through grpc-js first, and the
 * status at the end goes through grpc-js too (`call.end()` or an error), so it
 * follows every frame written here. If a grpc-js version moves the stream,
 * `direct` is false and responses go through `call.write` one by one:
 * correct, only slower (test/api/response-batch.test.ts checks the direct
 * path is taken with the grpc-js this project pins).
 */
import * as grpc from "@grpc/grpc-js";

/** gRPC's length prefix: a compressed flag byte, then the length as u32 big-endian. */
const FRAME_PREFIX_BYTES = 5;

interface RawStream {
  write(chunk: Buffer, cb: (err?: Error | null) => void): boolean;
  readonly closed: boolean;
  readonly destroyed: boolean;
}

type Call = grpc.ServerWritableStream<unknown, unknown> | grpc.ServerDuplexStream<unknown, unknown>;

function rawStreamOf(call: Call): RawStream | null {
  const inner = (call as unknown as { call?: { stream?: Partial<RawStream> & { respond?: unknown } } }).call;
  const s = inner?.stream;
  if (!s || typeof s.write !== "function" || typeof s.respond !== "function" || typeof s.closed !== "boolean") return null;
  return s as RawStream;
}

/**
 * The buffers flushes join frames in, reused once their write completes.
 * Why: a put watched 1,000 times over 10 streams allocated ten 33 KB
 * buffers, each an ArrayBuffer outside V8's heap; at 200 puts/s the
 * external memory they add up to kept V8 marking the whole heap again
 * every 100-150 ms (measured with --trace-gc), on top of scavenges.
 */
const SLAB_BYTES = 64 << 10;
/** Slabs kept for reuse at most (4 MiB); more are left to the GC. */
const FREE_SLABS_MAX = 64;
const freeSlabs: Buffer[] = [];

function takeSlab(bytes: number): Buffer {
  if (bytes > SLAB_BYTES) return Buffer.allocUnsafeSlow(bytes);
  return freeSlabs.pop() ?? Buffer.allocUnsafeSlow(SLAB_BYTES);
}

function giveBack(slab: Buffer): void {
  if (slab.length === SLAB_BYTES && freeSlabs.length < FREE_SLABS_MAX) freeSlabs.push(slab);
}

export class ResponseBatch {
  /** Whether frames go straight to the HTTP/2 stream (else one `call.write` per response). */
  readonly direct: boolean;
  private readonly raw: RawStream | null;
  /** The turn's responses: each a number (its length, where its frame prefix goes) then its parts. */
  private pending: (Buffer | number)[] = [];
  private pendingBytes = 0;
  private flushScheduled = false;
  /** Bytes handed to `send` whose write has not completed (HTTP/2 has not taken them yet). */
  private queuedBytes = 0;
  private full = false;

  /**
   * `budgetBytes`: once more than this is queued, `send` answers false (the
   * caller should stop producing); `onDrained` runs when the queue is back
   * under half of it.
   */
  constructor(private readonly call: Call, private readonly budgetBytes: number, private readonly onDrained: () => void) {
    this.raw = rawStreamOf(call);
    this.direct = this.raw !== null;
    // The headers go first, through grpc-js, so that it knows they went out.
    if (this.direct) call.sendMetadata(new grpc.Metadata());
  }

  /** Bytes queued and not yet taken by HTTP/2. */
  get queued(): number {
    return this.queuedBytes;
  }

  /**
   * Queues one response, given as the parts of its encoded protobuf message
   * (protobuf messages concatenate). False once over budget: the response is
   * still sent, but the caller should hold further ones until `onDrained`.
   */
  send(parts: readonly Buffer[]): boolean {
    let bytes = 0;
    for (const p of parts) bytes += p.length;
    this.queuedBytes += bytes + FRAME_PREFIX_BYTES;
    if (!this.raw) {
      const message = parts.length === 1 ? parts[0] : Buffer.concat(parts as Buffer[], bytes);
      this.call.write(message, () => this.written(message.length + FRAME_PREFIX_BYTES));
    } else {
      this.pending.push(bytes);
      for (const p of parts) this.pending.push(p);
      this.pendingBytes += bytes + FRAME_PREFIX_BYTES;
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        process.nextTick(() => this.flush());
      }
    }
    if (this.queuedBytes > this.budgetBytes) this.full = true;
    return !this.full;
  }

  private flush(): void {
    this.flushScheduled = false;
    const slab = takeSlab(this.pendingBytes);
    const chunk = slab.subarray(0, this.pendingBytes);
    let at = 0;
    // Plain byte stores and Uint8Array#set: Buffer#copy and writeUInt32BE check their arguments
    // in JS on every call, a third of this loop's time with 1,000 watchers.
    for (const p of this.pending) {
      if (typeof p === "number") {
        chunk[at] = 0; // not compressed
        chunk[at + 1] = p >>> 24;
        chunk[at + 2] = (p >>> 16) & 0xff;
        chunk[at + 3] = (p >>> 8) & 0xff;
        chunk[at + 4] = p & 0xff;
        at += FRAME_PREFIX_BYTES;
      } else {
        chunk.set(p, at);
        at += p.length;
      }
    }
    this.pending = [];
    this.pendingBytes = 0;
    const raw = this.raw!;
    if (raw.closed || raw.destroyed) {
      giveBack(slab);
      return; // the call is over: grpc-js reports it as cancelled
    }
    raw.write(chunk, () => {
      giveBack(slab); // the write is done (or failed): HTTP/2 holds the bytes no more
      this.written(chunk.length);
    });
  }

  private written(bytes: number): void {
    this.queuedBytes -= bytes;
    if (this.full && this.queuedBytes <= this.budgetBytes / 2) {
      this.full = false;
      this.onDrained();
    }
  }
}
