import fc from "fast-check";
import {
  ACTOR_BYTES, ActorId, BUCKET_KEY_BYTES, CHANGE_KEY_BYTES, MERGE_KEY_BYTES, Prefix, U64_BYTES,
  bucketKey, changeKey, decodeBucketKey, decodeChangeKey, decodeKeyHistoryKey, decodeMergeKey, decodeU64,
  encodeU64, isActorId, keyHistoryKey, keyToBytes, keyToString, mergeKey, prefixBounds,
} from "../../src/persist/encoding";
import { MergekvError } from "../../src/errors";
import { assertProperty } from "../helpers/random";

const revision = fc.maxSafeNat();
const actorId = fc.uint8Array({ minLength: ACTOR_BYTES, maxLength: ACTOR_BYTES }).map((b) => Buffer.from(b).toString("hex") as ActorId);
const bucketIndex = fc.integer({ min: 0, max: 2 ** 32 - 1 });
const anyBytes = fc.uint8Array({ maxLength: 64 });

function sign(n: number): number {
  return n < 0 ? -1 : n > 0 ? 1 : 0;
}

function expectCorrupt(decode: () => unknown): void {
  let caught: unknown;
  try {
    decode();
  } catch (e) {
    caught = e;
  }
  expect(caught).toBeInstanceOf(MergekvError);
  expect((caught as MergekvError).code).toBe("Corrupt");
}

/** Byte strings of any length but `length`, starting with any byte. */
function bytesOfOtherLength(length: number) {
  return fc.uint8Array({ maxLength: 40 }).filter((b) => b.length !== length);
}

describe("u64", () => {
  test("encodeU64 and decodeU64 round-trip every safe integer in 8 bytes", () => {
    assertProperty("u64 round trip", fc.property(revision, (n) => {
      const bytes = encodeU64(n);
      expect(bytes.length).toBe(U64_BYTES);
      expect(decodeU64(bytes)).toBe(n);
    }));
  });

  test("byte order of encodings is numeric order", () => {
    assertProperty("u64 order", fc.property(revision, revision, (a, b) => {
      expect(sign(Buffer.compare(encodeU64(a), encodeU64(b)))).toBe(sign(a - b));
    }));
  });

  test("decodeU64 reads at an offset", () => {
    assertProperty("u64 offset", fc.property(anyBytes, revision, (before, n) => {
      const buffer = Buffer.concat([Buffer.from(before), encodeU64(n)]);
      expect(decodeU64(buffer, before.length)).toBe(n);
    }));
  });

  test("decodeU64 rejects short input and values beyond the safe range as Corrupt", () => {
    expectCorrupt(() => decodeU64(Buffer.alloc(7)));
    expectCorrupt(() => decodeU64(Buffer.alloc(8), 1));
    expectCorrupt(() => decodeU64(Buffer.alloc(8, 0xff)));
    const justAbove = Buffer.alloc(8);
    justAbove.writeBigUInt64BE(BigInt(Number.MAX_SAFE_INTEGER) + 1n);
    expectCorrupt(() => decodeU64(justAbove));
  });

  test("encodeU64 refuses negative, fractional and unsafe numbers (programmer error)", () => {
    for (const bad of [-1, 1.5, Number.MAX_SAFE_INTEGER + 1, NaN]) {
      expect(() => encodeU64(bad)).toThrow(expect.objectContaining({ code: "Internal" }));
    }
  });
});

describe("change keys", () => {
  test("changeKey and decodeChangeKey round-trip", () => {
    assertProperty("change key round trip", fc.property(actorId, revision, (actor, seq) => {
      const key = changeKey(actor, seq);
      expect(key.length).toBe(CHANGE_KEY_BYTES);
      expect(key[0]).toBe(Prefix.Change);
      expect(decodeChangeKey(key)).toEqual({ actor, seq });
    }));
  });

  test("change keys sort by actor, then by sequence number", () => {
    assertProperty("change key order", fc.property(actorId, revision, actorId, revision, (actorA, seqA, actorB, seqB) => {
      const expected = actorA === actorB ? sign(seqA - seqB) : actorA < actorB ? -1 : 1;
      expect(sign(Buffer.compare(changeKey(actorA, seqA), changeKey(actorB, seqB)))).toBe(expected);
    }));
  });

  test("decodeChangeKey rejects wrong lengths and prefixes as Corrupt", () => {
    assertProperty("change key wrong length", fc.property(bytesOfOtherLength(CHANGE_KEY_BYTES), (bytes) => {
      const withPrefix = Buffer.from(bytes);
      if (withPrefix.length > 0) withPrefix[0] = Prefix.Change;
      expectCorrupt(() => decodeChangeKey(withPrefix));
    }));
    const wrongPrefix = changeKey("00".repeat(ACTOR_BYTES) as ActorId, 1);
    wrongPrefix[0] = Prefix.Merge;
    expectCorrupt(() => decodeChangeKey(wrongPrefix));
  });

  test("isActorId accepts exactly 32 lowercase hex digits", () => {
    expect(isActorId("0123456789abcdef0123456789abcdef")).toBe(true);
    expect(isActorId("0123456789ABCDEF0123456789ABCDEF")).toBe(false);
    expect(isActorId("0123456789abcdef0123456789abcde")).toBe(false);
    expect(isActorId("0123456789abcdef0123456789abcdeg")).toBe(false);
  });
});

describe("merge keys", () => {
  test("mergeKey and decodeMergeKey round-trip, in revision order", () => {
    assertProperty("merge key", fc.property(revision, revision, (a, b) => {
      expect(mergeKey(a).length).toBe(MERGE_KEY_BYTES);
      expect(decodeMergeKey(mergeKey(a))).toBe(a);
      expect(sign(Buffer.compare(mergeKey(a), mergeKey(b)))).toBe(sign(a - b));
    }));
  });

  test("decodeMergeKey rejects wrong lengths and prefixes as Corrupt", () => {
    assertProperty("merge key wrong length", fc.property(bytesOfOtherLength(MERGE_KEY_BYTES), (bytes) => {
      expectCorrupt(() => decodeMergeKey(bytes));
    }));
    const wrongPrefix = mergeKey(7);
    wrongPrefix[0] = Prefix.Change;
    expectCorrupt(() => decodeMergeKey(wrongPrefix));
  });
});

describe("bucket keys", () => {
  test("bucketKey and decodeBucketKey round-trip, in bucket order", () => {
    assertProperty("bucket key", fc.property(bucketIndex, bucketIndex, (a, b) => {
      expect(bucketKey(a).length).toBe(BUCKET_KEY_BYTES);
      expect(decodeBucketKey(bucketKey(a))).toBe(a);
      expect(sign(Buffer.compare(bucketKey(a), bucketKey(b)))).toBe(sign(a - b));
    }));
  });

  test("decodeBucketKey rejects wrong lengths and prefixes as Corrupt", () => {
    assertProperty("bucket key wrong length", fc.property(bytesOfOtherLength(BUCKET_KEY_BYTES), (bytes) => {
      expectCorrupt(() => decodeBucketKey(bytes));
    }));
    const wrongPrefix = bucketKey(3);
    wrongPrefix[0] = Prefix.KeyHistory;
    expectCorrupt(() => decodeBucketKey(wrongPrefix));
  });

  test("bucketKey refuses indexes outside u32 (programmer error)", () => {
    for (const bad of [-1, 2 ** 32, 0.5]) expect(() => bucketKey(bad)).toThrow(expect.objectContaining({ code: "Internal" }));
  });
});

describe("key-history keys", () => {
  test("keyHistoryKey and decodeKeyHistoryKey round-trip any non-empty key", () => {
    assertProperty("key-history key", fc.property(fc.uint8Array({ minLength: 1, maxLength: 64 }), (bytes) => {
      const key = keyToString(bytes);
      expect(decodeKeyHistoryKey(keyHistoryKey(key))).toBe(key);
    }));
  });

  test("decodeKeyHistoryKey rejects a bare prefix and other prefixes as Corrupt", () => {
    expectCorrupt(() => decodeKeyHistoryKey(Buffer.of(Prefix.KeyHistory)));
    expectCorrupt(() => decodeKeyHistoryKey(Buffer.of(Prefix.Bucket, 0x61)));
  });
});

describe("keys as binary strings", () => {
  test("keyToString and keyToBytes round-trip arbitrary bytes", () => {
    assertProperty("key string round trip", fc.property(anyBytes, (bytes) => {
      const text = keyToString(bytes);
      expect(text.length).toBe(bytes.length);
      expect(keyToBytes(text).equals(Buffer.from(bytes))).toBe(true);
    }));
  });

  test("keyToString reads only the view's bytes of a larger buffer", () => {
    assertProperty("key string of a view", fc.property(anyBytes, anyBytes, anyBytes, (before, bytes, after) => {
      const whole = Buffer.concat([Buffer.from(before), Buffer.from(bytes), Buffer.from(after)]);
      const view = new Uint8Array(whole.buffer, whole.byteOffset + before.length, bytes.length);
      expect(keyToBytes(keyToString(view)).equals(Buffer.from(bytes))).toBe(true);
    }));
  });

  test("string comparison of keys is byte order (what Range order relies on)", () => {
    assertProperty("key string order", fc.property(anyBytes, anyBytes, (a, b) => {
      const x = keyToString(a);
      const y = keyToString(b);
      const stringOrder = x < y ? -1 : x > y ? 1 : 0;
      expect(stringOrder).toBe(sign(Buffer.compare(Buffer.from(a), Buffer.from(b))));
    }));
  });
});

describe("prefixBounds", () => {
  test("covers exactly the keys with that prefix byte", () => {
    assertProperty("prefix bounds", fc.property(fc.integer({ min: 0, max: 254 }), fc.uint8Array({ minLength: 1, maxLength: 30 }), (prefix, key) => {
      const { gte, lt } = prefixBounds(prefix);
      const inside = Buffer.compare(Buffer.from(key), gte) >= 0 && Buffer.compare(Buffer.from(key), lt) < 0;
      expect(inside).toBe(key[0] === prefix);
    }));
  });
});
