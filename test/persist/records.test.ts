import fc from "fast-check";
import { crc32 } from "node:zlib";
import { ChangeRecord, RECORD_VERSION, RecordWriter, decodeRecord, encodeRecord, openBlob, sealBlob, packHistories, unpackHistories } from "../../src/persist/records";
import { KeyString, keyToString } from "../../src/persist/encoding";
import { MergekvError } from "../../src/errors";
import { assertProperty } from "../helpers/random";

const RECORD_NAME = "change record (key 63abcdef)";

const bucketChange = fc.record({
  bucket: fc.integer({ min: 0, max: 2 ** 32 - 1 }),
  bytes: fc.uint8Array({ maxLength: 48 }),
});

const write = fc.record({
  key: fc.uint8Array({ minLength: 1, maxLength: 24 }).map(keyToString),
  value: fc.option(fc.uint8Array({ maxLength: 48 }), { nil: null }),
  lease: fc.maxSafeNat(),
});

const changeRecord: fc.Arbitrary<ChangeRecord> = fc.record({
  rev: fc.maxSafeNat(),
  changes: fc.array(bucketChange, { maxLength: 5 }),
  writes: fc.array(write, { maxLength: 5 }),
});

/** The error `decode` throws, asserted to be Corrupt and to name `what`. */
function expectCorruptNaming(what: string, decode: () => unknown): MergekvError {
  let caught: unknown;
  try {
    decode();
  } catch (e) {
    caught = e;
  }
  expect(caught).toBeInstanceOf(MergekvError);
  const error = caught as MergekvError;
  expect(error.code).toBe("Corrupt");
  expect(error.message).toContain(what);
  return error;
}

/** A checksummed record whose body is `body`: passes the checksum, so the structure checks run. */
function withValidChecksum(body: Buffer): Buffer {
  const out = Buffer.alloc(4 + body.length);
  out.writeUInt32BE(crc32(body));
  body.copy(out, 4);
  return out;
}

describe("change records", () => {
  test("the on-disk layout is the documented one, byte for byte (records written by earlier versions read back)", () => {
    const record = {
      rev: 2 ** 40 + 7,
      changes: [{ bucket: 16383, bytes: Uint8Array.from([1, 2, 3]) }],
      writes: [{ key: "k\u00ff" as KeyString, value: Uint8Array.from([9]), lease: 5 }, { key: "d" as KeyString, value: null, lease: 0 }],
    };
    const body = [
      "01", "0000010000000007", // version, rev
      "00000001", "00003fff", "00000003", "010203", // one change: bucket 16383, 3 bytes
      "00000002", // two writes
      "00000002", "6bff", "00", "0000000000000005", "00000001", "09", // "k\xff" put, lease 5, value 09
      "00000001", "64", "01", "0000000000000000", "00000000", // "d" deleted
    ].join("");
    const sealed = withValidChecksum(Buffer.from(body, "hex"));
    expect(encodeRecord(record).toString("hex")).toBe(sealed.toString("hex"));
    expect(decodeRecord(sealed, RECORD_NAME)).toEqual(record);
  });

  test("encodeRecord and decodeRecord round-trip", () => {
    assertProperty("record round trip", fc.property(changeRecord, (record) => {
      expect(decodeRecord(encodeRecord(record), RECORD_NAME)).toEqual(record);
    }));
  });

  test("a deleted write stays distinct from a put of an empty value", () => {
    const key = keyToString(Buffer.from("k"));
    const record: ChangeRecord = { rev: 3, changes: [], writes: [{ key, value: null, lease: 0 }, { key, value: new Uint8Array(0), lease: 0 }] };
    const decoded = decodeRecord(encodeRecord(record), RECORD_NAME);
    expect(decoded.writes[0].value).toBeNull();
    expect(decoded.writes[1].value).toEqual(new Uint8Array(0));
  });

  test("decodes from a view into a larger buffer", () => {
    assertProperty("record in a view", fc.property(changeRecord, fc.uint8Array({ maxLength: 16 }), (record, before) => {
      const whole = Buffer.concat([Buffer.from(before), encodeRecord(record)]);
      expect(decodeRecord(whole.subarray(before.length), RECORD_NAME)).toEqual(record);
    }));
  });

  test("corrupting any byte gives a Corrupt error naming the record", () => {
    const flip = fc.tuple(changeRecord, fc.nat(), fc.integer({ min: 1, max: 255 }));
    assertProperty("record bit flip", fc.property(flip, ([record, position, mask]) => {
      const bytes = encodeRecord(record);
      bytes[position % bytes.length] ^= mask;
      expectCorruptNaming(RECORD_NAME, () => decodeRecord(bytes, RECORD_NAME));
    }));
  });

  test("truncating at any length gives a Corrupt error naming the record", () => {
    assertProperty("record truncation", fc.property(changeRecord, fc.nat(), (record, cut) => {
      const bytes = encodeRecord(record);
      const truncated = bytes.subarray(0, cut % bytes.length);
      expectCorruptNaming(RECORD_NAME, () => decodeRecord(truncated, RECORD_NAME));
    }));
  });

  test("appending bytes gives a Corrupt error naming the record", () => {
    assertProperty("record extension", fc.property(changeRecord, fc.uint8Array({ minLength: 1, maxLength: 8 }), (record, extra) => {
      const bytes = Buffer.concat([encodeRecord(record), Buffer.from(extra)]);
      expectCorruptNaming(RECORD_NAME, () => decodeRecord(bytes, RECORD_NAME));
    }));
  });

  test("an unknown version under a valid checksum is Corrupt", () => {
    const body = encodeRecord({ rev: 1, changes: [], writes: [] }).subarray(4);
    const changed = Buffer.from(body);
    changed[0] = RECORD_VERSION + 1;
    const error = expectCorruptNaming(RECORD_NAME, () => decodeRecord(withValidChecksum(changed), RECORD_NAME));
    expect(error.message).toContain("version");
  });

  test("a structurally short body under a valid checksum is Corrupt, not a crash", () => {
    const writer = new RecordWriter();
    writer.u8(RECORD_VERSION);
    writer.u64(5);
    writer.u32(3); // claims three bucket changes, holds none
    expectCorruptNaming(RECORD_NAME, () => decodeRecord(withValidChecksum(writer.finish()), RECORD_NAME));
  });

  test("trailing bytes under a valid checksum are Corrupt", () => {
    const body = encodeRecord({ rev: 1, changes: [], writes: [] }).subarray(4);
    const longer = Buffer.concat([body, Buffer.of(0)]);
    const error = expectCorruptNaming(RECORD_NAME, () => decodeRecord(withValidChecksum(longer), RECORD_NAME));
    expect(error.message).toContain("trailing");
  });
});

describe("sealed blobs", () => {
  const BLOB_NAME = "bucket record (key 6200000001)";

  test("sealBlob and openBlob round-trip", () => {
    assertProperty("blob round trip", fc.property(fc.uint8Array({ maxLength: 128 }), (body) => {
      expect(Buffer.from(openBlob(sealBlob(body), BLOB_NAME)).equals(Buffer.from(body))).toBe(true);
    }));
  });

  test("corrupting any byte gives a Corrupt error naming the blob", () => {
    const flip = fc.tuple(fc.uint8Array({ maxLength: 64 }), fc.nat(), fc.integer({ min: 1, max: 255 }));
    assertProperty("blob bit flip", fc.property(flip, ([body, position, mask]) => {
      const sealed = sealBlob(body);
      sealed[position % sealed.length] ^= mask;
      expectCorruptNaming(BLOB_NAME, () => openBlob(sealed, BLOB_NAME));
    }));
  });

  test("a blob shorter than its checksum is Corrupt", () => {
    for (let length = 0; length < 4; length++) {
      expectCorruptNaming(BLOB_NAME, () => openBlob(Buffer.alloc(length), BLOB_NAME));
    }
  });
});

describe("packed key histories", () => {
  test("pack then unpack gives back every pair in order; truncation is Corrupt", () => {
    const pairs: [KeyString, Uint8Array][] = [
      [keyToString(Buffer.from([0, 255, 7])), new Uint8Array([1, 2, 3])],
      [keyToString(Buffer.from("k")), new Uint8Array(0)],
      [keyToString(Buffer.from("z".repeat(300))), new Uint8Array(1000).fill(9)],
    ];
    const packed = packHistories(pairs);
    expect(packed.count).toBe(3);
    expect([...unpackHistories(packed)].map(([k, v]) => [k, Buffer.from(v).toString("hex")])).toEqual(pairs.map(([k, v]) => [k, Buffer.from(v).toString("hex")]));
    const truncated = { bytes: packed.bytes.subarray(0, packed.bytes.length - 1), count: 3 };
    expect(() => [...unpackHistories(truncated)]).toThrow(/packed key histories: truncated/);
  });
});
