/**
 * A server stream's responses written as gRPC frames, every response of one
 * event-loop turn in one HTTP/2 write.
 *
 * Why: a put watched 1,000 times made 1,000 writes when each response was
 * its own; each write is a trip through the HTTP/2 stream and the event
 * loop, and the fan-out delivered in bursts spread over many turns. Here one
 * put makes one write per stream: the responses' frames (a 5-byte gRPC
 * prefix each, uncompressed) joined into one buffer.
 */
import { FRAME_PREFIX_BYTES, ServerCall } from "./grpc-server";

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
  constructor(private readonly call: ServerCall, private readonly budgetBytes: number, private readonly onDrained: () => void) {}

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
    this.pending.push(bytes);
    for (const p of parts) this.pending.push(p);
    this.pendingBytes += bytes + FRAME_PREFIX_BYTES;
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      process.nextTick(() => this.flush());
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
    this.call.writeFrames(chunk, () => {
      giveBack(slab); // the write is done (or failed, or the call is over): HTTP/2 holds the bytes no more
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
