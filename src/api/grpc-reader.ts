/**
 * Cuts one call's request stream into messages (gRPC's 5-byte length prefix,
 * identity, gzip or deflate). The prefix is checked as soon as it arrives,
 * so a message over the limit is refused without being buffered, and a
 * message's bytes are joined once, when the last of them arrives.
 */
import * as zlib from "node:zlib";
import { GrpcStatus } from "../errors";
import { FRAME_PREFIX_BYTES, statusError } from "./grpc-call";

export class MessageReader {
  /** Bytes received and not yet cut into messages. */
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  /** The next message's length once its prefix has been read (-1: not yet), and its compressed flag. */
  private length = -1;
  private compressed = false;

  constructor(private readonly receiveBytesMax: number, private readonly encoding: string) {}

  /** True when bytes of an unfinished message are held. */
  get partial(): boolean {
    return this.pendingBytes > 0;
  }

  /** Adds a chunk; returns the whole messages it completes (throws a StatusError on a bad one). */
  push(chunk: Buffer): Buffer[] {
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    const out: Buffer[] = [];
    for (;;) {
      if (this.length < 0) {
        if (this.pendingBytes < FRAME_PREFIX_BYTES) break;
        const head = this.pending[0].length >= FRAME_PREFIX_BYTES ? this.pending[0] : this.joined();
        const length = head.readUInt32BE(1);
        if (length > this.receiveBytesMax) {
          throw statusError(GrpcStatus.ResourceExhausted, `grpc: received message larger than max (${length} vs. ${this.receiveBytesMax})`);
        }
        this.compressed = head[0] !== 0;
        this.length = length;
      }
      const end = FRAME_PREFIX_BYTES + this.length;
      if (this.pendingBytes < end) break; // wait for the rest: nothing is joined until it is all here
      const buf = this.joined();
      const message = buf.subarray(FRAME_PREFIX_BYTES, end);
      out.push(this.compressed ? this.decompress(message) : message);
      const rest = buf.subarray(end);
      this.pending = rest.length > 0 ? [rest] : [];
      this.pendingBytes = rest.length;
      this.length = -1;
    }
    return out;
  }

  /** The pending bytes as one buffer (kept joined). */
  private joined(): Buffer {
    if (this.pending.length > 1) this.pending = [Buffer.concat(this.pending, this.pendingBytes)];
    return this.pending[0];
  }

  private decompress(message: Buffer): Buffer {
    if (this.encoding === "identity") throw statusError(GrpcStatus.Internal, "grpc: compressed flag set with identity or empty encoding");
    if (this.encoding !== "gzip" && this.encoding !== "deflate") {
      throw statusError(GrpcStatus.Unimplemented, `grpc: Decompressor is not installed for grpc-encoding "${this.encoding}"`);
    }
    try {
      const limit = { maxOutputLength: this.receiveBytesMax };
      return this.encoding === "gzip" ? zlib.gunzipSync(message, limit) : zlib.inflateSync(message, limit);
    } catch (e) {
      throw statusError(GrpcStatus.ResourceExhausted, `grpc: received message after decompression larger than max or corrupt: ${(e as Error).message}`);
    }
  }
}
