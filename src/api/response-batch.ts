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
import { FRAME_PREFIX_BYTES, ServerCall } from "./grpc-call";

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

/**
 * Consecutive responses that share a body, each after its own head of one
 * length (a watch response: the watcher's id, then the events every alike
 * watcher gets). Their frames differ only in the head: the flush writes the
 * first, copies it in doubling runs and writes each head over its copy.
 */
interface Run {
  body: Buffer;
  heads: readonly Buffer[];
  headBytes: number;
  /** `heads` is the caller's (sendRun): later responses start a run of their own. */
  borrowed: boolean;
}

/**
 * Bytes of responses one event-loop turn writes at most (the batch that
 * crosses it is written whole); the streams still waiting go out on the next
 * turns, in the order they were queued.
 * Why: a put watched 1,000 times over 10 streams is 330 KB of frames and
 * about 0.4 ms of the main thread (framing, HTTP/2, the loopback sends). In
 * one turn, the writer's next request waited behind all of it; between
 * turns, the event loop reads it and hands it to a frontend, which works on
 * it while the rest goes out. Measured on the watch fan-out benchmark,
 * alternating runs: 513 -> 552 puts/s (10 streams). 32 KiB is about one
 * such stream's share of a put; many small streams (a watch each) still go
 * out dozens to a turn, not one turn each.
 */
export const TURN_FLUSH_BYTES = 32 << 10;

/** Written batches left at the flush queue's head before it is cut (a cut copies the rest). */
const CONSUMED_KEPT_MAX = 1_024;

/** The batches with responses to write, in the order they got their first; written on the next tick, at most TURN_FLUSH_BYTES a turn. */
class FlushQueue {
  private readonly waiting: ResponseBatch[] = [];
  private next = 0;
  private scheduled = false;

  add(batch: ResponseBatch): void {
    this.waiting.push(batch);
    if (!this.scheduled) {
      this.scheduled = true;
      process.nextTick(() => this.drain());
    }
  }

  private drain(): void {
    let bytes = 0;
    while (this.next < this.waiting.length && bytes < TURN_FLUSH_BYTES) bytes += this.waiting[this.next++].flush();
    if (this.next < this.waiting.length) {
      if (this.next >= CONSUMED_KEPT_MAX) {
        // Under steady load the queue may never empty: drop what is written.
        this.waiting.splice(0, this.next);
        this.next = 0;
      }
      setImmediate(() => this.drain()); // after the poll phase: requests that came meanwhile go first
      return;
    }
    this.waiting.length = 0;
    this.next = 0;
    this.scheduled = false;
  }
}

const flushes = new FlushQueue();

export class ResponseBatch {
  /** The turn's responses, in order. */
  private pending: Run[] = [];
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
   * Queues one response: its encoded protobuf message is `head` then `body`
   * (protobuf messages concatenate). One with the same body Buffer as the
   * last response's, and a head as long, joins its run. False once over budget: the response is
   * still sent, but the caller should hold further ones until `onDrained`.
   */
  send(head: Buffer, body: Buffer): boolean {
    const bytes = FRAME_PREFIX_BYTES + head.length + body.length;
    this.queuedBytes += bytes;
    this.pendingBytes += bytes;
    const last = this.pending.length > 0 ? this.pending[this.pending.length - 1] : undefined;
    if (last !== undefined && !last.borrowed && last.body === body && last.headBytes === head.length) (last.heads as Buffer[]).push(head);
    else this.queue({ body, heads: [head], headBytes: head.length, borrowed: false });
    return this.accepting();
  }

  /**
   * Queues one response per head, all with this body: as `send` for each,
   * in one call. `heads` must all be one length, and stay unchanged until
   * the flush (a cohort's cached array).
   */
  sendRun(heads: readonly Buffer[], body: Buffer): boolean {
    if (heads.length === 0) return this.accepting();
    const headBytes = heads[0].length;
    const bytes = heads.length * (FRAME_PREFIX_BYTES + headBytes + body.length);
    this.queuedBytes += bytes;
    this.pendingBytes += bytes;
    this.queue({ body, heads, headBytes, borrowed: true });
    return this.accepting();
  }

  private queue(run: Run): void {
    this.pending.push(run);
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      flushes.add(this);
    }
  }

  private accepting(): boolean {
    if (this.queuedBytes > this.budgetBytes) this.full = true;
    return !this.full;
  }

  /**
   * Writes the pending responses as one chunk; the bytes written. The flush
   * queue calls it on the batch's turn; call it before ending the call, which
   * would drop what is still queued.
   */
  flush(): number {
    this.flushScheduled = false;
    if (this.pending.length === 0) return 0; // flushed before its turn
    const slab = takeSlab(this.pendingBytes);
    const chunk = slab.subarray(0, this.pendingBytes);
    let at = 0;
    for (const run of this.pending) at = writeRun(chunk, at, run);
    this.pending = [];
    this.pendingBytes = 0;
    this.call.writeFrames(chunk, () => {
      giveBack(slab); // the write is done (or failed, or the call is over): HTTP/2 holds the bytes no more
      this.written(chunk.length);
    });
    return chunk.length;
  }

  private written(bytes: number): void {
    this.queuedBytes -= bytes;
    if (this.full && this.queuedBytes <= this.budgetBytes / 2) {
      this.full = false;
      this.onDrained();
    }
  }
}

/*
 * Plain byte stores, Uint8Array#set and #copyWithin: Buffer#copy and
 * writeUInt32BE check their arguments in JS on every call, a third of the
 * join's time with 1,000 watchers.
 */

/** One frame: prefix, head, body; returns where the next one goes. */
function writeFrame(chunk: Buffer, at: number, head: Buffer, body: Buffer): number {
  const length = head.length + body.length;
  chunk[at] = 0; // not compressed
  chunk[at + 1] = length >>> 24;
  chunk[at + 2] = (length >>> 16) & 0xff;
  chunk[at + 3] = (length >>> 8) & 0xff;
  chunk[at + 4] = length & 0xff;
  chunk.set(head, at + FRAME_PREFIX_BYTES);
  chunk.set(body, at + FRAME_PREFIX_BYTES + head.length);
  return at + FRAME_PREFIX_BYTES + length;
}

/** The run's first frame, copied in doubling runs, then each head written over its copy. */
function writeRun(chunk: Buffer, at: number, run: Run): number {
  const { heads } = run;
  const start = at;
  const frameBytes = writeFrame(chunk, at, heads[0], run.body) - start;
  const n = heads.length;
  for (let done = 1; done < n;) {
    const copies = Math.min(done, n - done);
    chunk.copyWithin(start + done * frameBytes, start, start + copies * frameBytes);
    done += copies;
  }
  const headBytes = run.headBytes;
  for (let i = 1; i < n; i++) {
    const head = heads[i];
    const to = start + i * frameBytes + FRAME_PREFIX_BYTES;
    for (let j = 0; j < headBytes; j++) chunk[to + j] = head[j];
  }
  return start + n * frameBytes;
}
