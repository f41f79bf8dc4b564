/**
 * The gateway's JSON mapping (api/gateway-json.ts) on etcd's own message
 * types: what goes out (proto names, int64 as strings, base64, etcd's enum
 * names, zero values left out) and what comes in, with the errors a bad
 * body gets. The integration suite checks the same against a real etcd.
 */
import * as protobuf from "protobufjs";
import * as path from "node:path";
import { GrpcStatus } from "../../src/errors";
import { StatusError } from "../../src/api/grpc-call";
import { JsonStreamSplitter, STREAM_VALUE_BYTES_MAX, bytesFromBase64, etcdEnumName, messageFromJson, messageToJson } from "../../src/api/gateway-json";
import { PROTO_DIR } from "../../src/api/proto";

const root = new protobuf.Root();
root.loadSync(path.join(PROTO_DIR, "rpc.proto"), { keepCase: true });
root.resolveAll();
const type = (name: string) => root.lookupType(`etcdserverpb.${name}`);

/** The round trip a request makes: JSON -> message -> wire -> message -> JSON. */
function roundTrip(name: string, json: unknown): unknown {
  const t = type(name);
  return messageToJson(t, t.decode(t.encode(messageFromJson(t, json)).finish()));
}

function statusOf(f: () => unknown): { code: number; message: string } {
  try {
    f();
  } catch (e) {
    if (e instanceof StatusError) return e.status;
    throw e;
  }
  throw new Error("expected a StatusError");
}

describe("gateway JSON", () => {
  test("out: proto names in declaration order, int64 as strings, bytes as base64, zero values and empty lists left out", () => {
    const t = type("RangeResponse");
    const m = t.fromObject({ header: { cluster_id: "18446744073709551615", revision: 7 }, kvs: [{ key: Buffer.from("a"), mod_revision: 3, version: 0, value: Buffer.alloc(0) }], more: false, count: 1 });
    const json = messageToJson(t, t.decode(t.encode(m).finish()));
    expect(json).toEqual({ header: { cluster_id: "18446744073709551615", revision: "7" }, kvs: [{ key: "YQ==", mod_revision: "3" }], count: "1" });
    expect(Object.keys(json)).toEqual(["header", "kvs", "count"]);
    expect(messageToJson(t, t.decode(t.encode(t.fromObject({})).finish()))).toEqual({}); // an unset message is left out too
  });

  test("enums go by etcd's names, both ways; a number passes as it is", () => {
    expect(["NotEqual", "Readwrite", "Noput", "Delete", "Key", "Nospace"].map(etcdEnumName)).toEqual(["NOT_EQUAL", "READWRITE", "NOPUT", "DELETE", "KEY", "NOSPACE"]);
    expect(roundTrip("Compare", { result: "NOT_EQUAL", target: "MOD", key: "YQ==", mod_revision: "5" })).toEqual({ result: "NOT_EQUAL", target: "MOD", key: "YQ==", mod_revision: "5" });
    expect(roundTrip("RangeRequest", { key: "YQ==", sort_order: 7 })).toEqual({ key: "YQ==", sort_order: 7 });
    expect(roundTrip("RangeRequest", { key: "YQ==", sort_order: "NONE" })).toEqual({ key: "YQ==" }); // the zero value
    const bad = statusOf(() => messageFromJson(type("Compare"), { target: "Value" }));
    expect(bad).toEqual({ code: GrpcStatus.InvalidArgument, message: 'Compare.target: unknown value "Value" for enum CompareTarget (one of VERSION, CREATE, MOD, VALUE, LEASE)' });
  });

  test("in: proto or lowerCamelCase names, integers as numbers or strings, unknown fields and nulls ignored", () => {
    expect(roundTrip("RangeRequest", { key: "YQ==", rangeEnd: "Yg==", limit: 5, revision: "12", count_only: true, whatever: [1], min_mod_revision: null }))
      .toEqual({ key: "YQ==", range_end: "Yg==", limit: "5", revision: "12", count_only: true });
    expect(roundTrip("TxnRequest", { success: [{ request_put: { key: "YQ==", prevKv: true } }] })).toEqual({ success: [{ request_put: { key: "YQ==", prev_kv: true } }] });
  });

  test("in: a value of the wrong kind or out of range is INVALID_ARGUMENT naming the field", () => {
    const range = type("RangeRequest");
    expect(statusOf(() => messageFromJson(range, { revision: "abc" })).message).toBe('RangeRequest.revision: expected an integer (int64), got "abc"');
    expect(statusOf(() => messageFromJson(range, { revision: 1.5 })).message).toBe("RangeRequest.revision: expected an integer (int64), got 1.5");
    expect(statusOf(() => messageFromJson(range, { revision: "9223372036854775808" })).message).toBe("RangeRequest.revision: 9223372036854775808 is out of range for int64");
    expect(messageToJson(range, range.decode(range.encode(messageFromJson(range, { revision: "9223372036854775807" })).finish()))).toEqual({ revision: "9223372036854775807" });
    expect(statusOf(() => messageFromJson(range, { keys_only: "yes" })).message).toBe('RangeRequest.keys_only: expected true or false, got "yes"');
    expect(statusOf(() => messageFromJson(range, { key: 5 })).message).toBe("RangeRequest.key: expected base64 bytes in a string, got 5");
    expect(statusOf(() => messageFromJson(type("TxnRequest"), { success: {} })).message).toBe("TxnRequest.success: expected a JSON array, got {}");
    expect(statusOf(() => messageFromJson(range, [1])).code).toBe(GrpcStatus.InvalidArgument);
    expect(roundTrip("LeaseGrantRequest", { TTL: -1 })).toEqual({ TTL: "-1" }); // int64 takes negatives: the handler decides
  });

  test("base64: standard or URL-safe, padded or not; a bad character is named by its offset", () => {
    expect(bytesFromBase64("Zm9vYg==", "k").toString()).toBe("foob");
    expect(bytesFromBase64("Zm9vYg", "k").toString()).toBe("foob");
    expect(bytesFromBase64("-_8", "k")).toEqual(Buffer.from([0xfb, 0xff]));
    expect(statusOf(() => bytesFromBase64("not base64!", "k")).message).toBe("k: illegal base64 data at input byte 3");
    expect(statusOf(() => bytesFromBase64("Zm=9", "k")).message).toBe("k: illegal base64 data at input byte 2");
    expect(statusOf(() => bytesFromBase64("Zm9vY", "k")).message).toBe("k: illegal base64 data at input byte 4");
  });

  test("a request stream is cut into its JSON values wherever the chunks fall", () => {
    const text = ' {"a":{"b":"}{\\"x"}}\n{"c":[1,{"d":2}]}{"e":"\\\\"} ';
    for (let cut = 0; cut <= text.length; cut++) {
      const s = new JsonStreamSplitter();
      const values = [...s.push(text.slice(0, cut)), ...s.push(text.slice(cut))];
      expect(values).toEqual([{ a: { b: '}{"x' } }, { c: [1, { d: 2 }] }, { e: "\\" }]);
      expect(s.partial).toBe(false);
    }
    const open = new JsonStreamSplitter();
    expect(open.push('{"a":')).toEqual([]);
    expect(open.partial).toBe(true);
    expect(statusOf(() => new JsonStreamSplitter().push("42")).message).toBe('request stream: expected a JSON object, got "42"');
    expect(statusOf(() => new JsonStreamSplitter().push("{x}")).message).toMatch(/^request body is not JSON: /);
    const huge = new JsonStreamSplitter();
    expect(statusOf(() => huge.push(`{"v":"${"x".repeat(STREAM_VALUE_BYTES_MAX)}`)).message).toBe(`request stream: a value over ${STREAM_VALUE_BYTES_MAX} bytes`);
  });
});
