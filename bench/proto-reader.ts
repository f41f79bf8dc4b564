/**
 * A protobuf cursor over one buffer, allocating nothing: what the
 * benchmark's hand-written readers (the watch threads' responses, the floor
 * server's requests) share. Varints are read as numbers (exact below 2^53).
 */
export class ProtoReader {
  pos = 0;
  buf: Buffer = Buffer.alloc(0);

  /** Reads `buf` from `pos` on. */
  at(buf: Buffer, pos = 0): this {
    this.buf = buf;
    this.pos = pos;
    return this;
  }

  varint(): number {
    const b = this.buf;
    let r = 0;
    let mul = 1;
    let byte: number;
    do {
      byte = b[this.pos++];
      r += (byte & 0x7f) * mul;
      mul *= 128;
    } while (byte & 0x80);
    return r;
  }

  /** Steps over a field's value of this wire type. */
  skip(wireType: number): void {
    if (wireType === 0) this.varint();
    else if (wireType === 2) {
      const len = this.varint(); // read first: `pos += varint()` would add to the old pos
      this.pos += len;
    } else if (wireType === 1) this.pos += 8;
    else if (wireType === 5) this.pos += 4;
    else throw new Error(`unsupported wire type ${wireType}`);
  }
}
