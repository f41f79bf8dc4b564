/** Cutting a request stream into gRPC messages, however the bytes arrive. */
import * as zlib from "node:zlib";
import { MessageReader } from "../../src/api/grpc-reader";
import { StatusError } from "../../src/api/grpc-call";
import { framed } from "../helpers/grpc";

const LIMIT = 4 << 20;

function pieces(bytes: Buffer, size: number): Buffer[] {
  const out: Buffer[] = [];
  for (let at = 0; at < bytes.length; at += size) out.push(bytes.subarray(at, at + size));
  return out;
}

describe("MessageReader", () => {
  test("messages split anywhere, prefixes included, and several in one chunk come out whole and in order", () => {
    const messages = [Buffer.from("a"), Buffer.alloc(0), Buffer.from("third message ".repeat(30)), Buffer.from("z")];
    const stream = Buffer.concat(messages.map((m) => framed(m)));
    for (const size of [1, 2, 3, 5, 7, 64, stream.length]) {
      const reader = new MessageReader(LIMIT, "identity");
      const got = pieces(stream, size).flatMap((c) => reader.push(c));
      expect(got.map((m) => m.toString())).toEqual(messages.map((m) => m.toString()));
      expect(reader.partial).toBe(false);
    }
  });

  test("a large message arriving in small chunks is joined once, not once per chunk", () => {
    const message = Buffer.alloc(1 << 20, 7);
    const reader = new MessageReader(LIMIT, "identity");
    const chunks = pieces(framed(message), 1024);
    const concat = jest.spyOn(Buffer, "concat");
    try {
      const got = chunks.flatMap((c) => reader.push(c));
      expect(got).toHaveLength(1);
      expect(got[0].equals(message)).toBe(true);
      expect(concat.mock.calls.length).toBeLessThanOrEqual(1);
    } finally {
      concat.mockRestore();
    }
  });

  test("an unfinished message is partial; a prefix over the limit is refused before its bytes arrive", () => {
    const reader = new MessageReader(LIMIT, "identity");
    expect(reader.push(framed(Buffer.from("abcdef")).subarray(0, 7))).toEqual([]);
    expect(reader.partial).toBe(true);
    const big = Buffer.alloc(5);
    big.writeUInt32BE(LIMIT + 1, 1);
    expect(() => new MessageReader(LIMIT, "identity").push(big)).toThrow(StatusError);
    try {
      new MessageReader(LIMIT, "identity").push(big);
    } catch (e) {
      expect((e as StatusError).status).toEqual({ code: 8, message: `grpc: received message larger than max (${LIMIT + 1} vs. ${LIMIT})` });
    }
  });

  test("compressed messages: gzip and deflate are inflated; other encodings are refused with gRPC's codes", () => {
    const text = Buffer.from("compressed ".repeat(100));
    expect(new MessageReader(LIMIT, "gzip").push(framed(zlib.gzipSync(text), true))[0].equals(text)).toBe(true);
    expect(new MessageReader(LIMIT, "deflate").push(framed(zlib.deflateSync(text), true))[0].equals(text)).toBe(true);
    const codeOf = (encoding: string, bytes: Buffer) => {
      try {
        new MessageReader(LIMIT, encoding).push(framed(bytes, true));
      } catch (e) {
        return (e as StatusError).status.code;
      }
      return 0;
    };
    expect(codeOf("identity", text)).toBe(13);
    expect(codeOf("snappy", text)).toBe(12);
    expect(codeOf("gzip", Buffer.from("not gzip"))).toBe(8);
  });
});
