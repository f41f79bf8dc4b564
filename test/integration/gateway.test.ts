/**
 * etcd's gRPC gateway (the v3 API as JSON over HTTP at /v3/...) against
 * mergekv and, as the reference, a real etcd 3.4: the same requests, the same
 * answers (header ids aside), the same HTTP statuses and error bodies.
 */
import * as http2 from "node:http2";
import * as path from "node:path";
import { promises as fs } from "node:fs";
import { serveSuite, Target, TARGETS } from "../helpers/targets";
import { b64, gatewayPost, gatewayStream, gatewayWebsocket } from "../helpers/gateway";
import { http2Post } from "../helpers/http";
import { RunningServer, startServer, tempDir } from "../helpers/server";
import { run } from "../helpers/etcdctl";

const CLI = path.join(__dirname, "..", "..", "bin", "mergekv.js");

/** The header every answer carries: ids as strings; a revision as a string. */
const CORS_METHODS = "POST, GET, OPTIONS, PUT, DELETE";
const CORS_HEADERS = "accept, content-type, authorization";
const corsOf = (h: Record<string, unknown>) => Object.fromEntries(Object.entries(h).filter(([k]) => k.startsWith("access-control-")));

/** A Txn's inner responses carry only the revision in their header, on etcd as here. */
const INNER_HEADER = { revision: expect.stringMatching(/^\d+$/) };
const HEADER = { cluster_id: expect.stringMatching(/^\d+$/), member_id: expect.stringMatching(/^\d+$/), revision: expect.stringMatching(/^\d+$/), raft_term: expect.stringMatching(/^\d+$/) };

describe.each(TARGETS)("gRPC gateway on %s", (name) => {
  let target: Target;
  const post = (path: string, body: unknown, headers?: Record<string, string>) => gatewayPost(target.endpoint, path, body, headers);
  const ok = async (path: string, body: unknown, headers?: Record<string, string>) => {
    const a = await post(path, body, headers);
    expect({ status: a.status, text: a.text }).toEqual({ status: 200, text: expect.any(String) });
    expect(a.headers["content-type"]).toBe("application/json");
    return a.json;
  };
  const revision = async () => Number((await ok("/v3/kv/range", { key: b64("\0") })).header.revision);

  serveSuite(name, () => ({ close: () => undefined }), (t) => { target = t; });

  test("put, range and deleterange: int64 as strings, bytes as base64, zero values left out", async () => {
    const put = await ok("/v3/kv/put", { key: b64("gw/a"), value: b64("1") });
    expect(put).toEqual({ header: HEADER });
    const rev = Number(put.header.revision);
    const again = await ok("/v3/kv/put", { key: b64("gw/a"), value: b64("2"), prev_kv: true });
    expect(again).toEqual({ header: { ...HEADER, revision: String(rev + 1) }, prev_kv: { key: b64("gw/a"), create_revision: String(rev), mod_revision: String(rev), version: "1", value: b64("1") } });
    // lowerCamelCase names are read too; an unknown field is ignored; null leaves a field unset
    await ok("/v3/kv/put", { key: b64("gw/b"), value: b64("3"), ignoredField: 1, lease: null });
    const range = await ok("/v3/kv/range", { key: b64("gw/"), rangeEnd: b64("gw0"), sort_order: "DESCEND", sort_target: "KEY" });
    expect(range.kvs.map((kv: { key: string }) => Buffer.from(kv.key, "base64").toString())).toEqual(["gw/b", "gw/a"]);
    expect(range.kvs[1]).toEqual({ key: b64("gw/a"), create_revision: String(rev), mod_revision: String(rev + 1), version: "2", value: b64("2") });
    expect(range.count).toBe("2");
    expect(range.more).toBeUndefined();
    const limited = await ok("/v3/kv/range", { key: b64("gw/"), range_end: b64("gw0"), limit: 1, keys_only: true });
    expect(limited).toEqual({ header: HEADER, kvs: [{ key: b64("gw/a"), create_revision: String(rev), mod_revision: String(rev + 1), version: "2" }], more: true, count: "2" });
    expect(await ok("/v3/kv/range", { key: b64("gw/none") })).toEqual({ header: HEADER });
    expect(await ok("/v3/kv/range", { key: b64("gw/"), range_end: b64("gw0"), countOnly: true })).toEqual({ header: HEADER, count: "2" });
    const del = await ok("/v3/kv/deleterange", { key: b64("gw/b"), prev_kv: true });
    expect(del).toEqual({ header: HEADER, deleted: "1", prev_kvs: [expect.objectContaining({ key: b64("gw/b"), value: b64("3") })] });
    // /v3beta/ is read as /v3/
    expect((await ok("/v3beta/kv/range", { key: b64("gw/a") })).count).toBe("1");
  });

  test("txn: compares by enum name, oneof requests and responses by their field names", async () => {
    await ok("/v3/kv/put", { key: b64("gw/t"), value: b64("v1") });
    const txn = (value: string) => ok("/v3/kv/txn", {
      compare: [{ key: b64("gw/t"), target: "VALUE", result: "EQUAL", value: b64(value) }],
      success: [{ request_put: { key: b64("gw/t"), value: b64("v2") } }, { request_range: { key: b64("gw/t") } }],
      failure: [{ request_delete_range: { key: b64("gw/t") } }],
    });
    const won = await txn("v1");
    expect(won.succeeded).toBe(true);
    expect(won.responses).toEqual([{ response_put: { header: INNER_HEADER } }, { response_range: { header: INNER_HEADER, kvs: [expect.objectContaining({ value: b64("v2"), version: "2" })], count: "1" } }]);
    const lost = await txn("v1");
    expect(lost.succeeded).toBeUndefined(); // false is a zero value
    expect(lost.responses).toEqual([{ response_delete_range: { header: INNER_HEADER, deleted: "1" } }]);
  });

  test("errors: the gRPC code and message in grpc-gateway's body, with its HTTP status", async () => {
    const empty = await post("/v3/kv/put", { key: "", value: b64("x") });
    expect([empty.status, empty.json]).toEqual([400, { error: "etcdserver: key is not provided", message: "etcdserver: key is not provided", code: 3 }]);
    const future = await post("/v3/kv/range", { key: b64("k"), revision: (await revision()) + 100 });
    expect([future.status, future.json]).toEqual([400, { error: "etcdserver: mvcc: required revision is a future revision", message: "etcdserver: mvcc: required revision is a future revision", code: 11 }]);
    const noBody = await post("/v3/kv/range", "");
    expect([noBody.status, noBody.json.code, noBody.json.message]).toEqual([400, 3, "etcdserver: key is not provided"]);
    const badJson = await post("/v3/kv/put", '{"key":"Zm9v",');
    expect([badJson.status, badJson.json.code]).toEqual([400, 3]);
    const badBase64 = await post("/v3/kv/put", { key: "not base64!" });
    expect([badBase64.status, badBase64.json.code]).toEqual([400, 3]);
    expect(badBase64.json.message).toContain("illegal base64 data at input byte 3");
    const badInt = await post("/v3/kv/range", { key: b64("k"), revision: "abc" });
    expect([badInt.status, badInt.json.code]).toEqual([400, 3]);
    const unknown = await post("/v3/kv/nothing", {});
    expect([unknown.status, unknown.text]).toEqual([404, "Not Found\n"]);
    const get = await gatewayPost(target.endpoint, "/v3/kv/range", undefined, {}, "GET");
    expect([get.status, get.text]).toEqual([405, "Method Not Allowed\n"]);
    expect((await ok("/v3/kv/range", { key: b64("gw/a") })).count).toBe("1"); // still serving
  });

  test("compaction, and compacting again: code 11 on HTTP 400", async () => {
    const rev = await revision();
    expect(await ok("/v3/kv/compaction", { revision: rev })).toEqual({ header: HEADER });
    const again = await post("/v3/kv/compaction", { revision: rev });
    expect([again.status, again.json]).toEqual([400, { error: "etcdserver: mvcc: required revision has been compacted", message: "etcdserver: mvcc: required revision has been compacted", code: 11 }]);
  });

  test("leases: grant, duplicate id (HTTP 412), time to live with keys, list, keep-alive stream, revoke", async () => {
    expect(await ok("/v3/lease/grant", { TTL: 30, ID: 4343 })).toEqual({ header: HEADER, ID: "4343", TTL: "30" });
    const dup = await post("/v3/lease/grant", { TTL: 30, ID: "4343" });
    expect([dup.status, dup.json]).toEqual([412, { error: "etcdserver: lease already exists", message: "etcdserver: lease already exists", code: 9 }]);
    await ok("/v3/kv/put", { key: b64("gw/leased"), value: b64("x"), lease: "4343" });
    const ttl = await ok("/v3/kv/lease/timetolive", { ID: 4343, keys: true });
    expect(ttl).toEqual({ header: HEADER, ID: "4343", TTL: expect.stringMatching(/^(29|30)$/), grantedTTL: "30", keys: [b64("gw/leased")] });
    expect((await ok("/v3/lease/leases", {})).leases).toEqual(expect.arrayContaining([{ ID: "4343" }]));

    // Both requests, then the body's end (the client's half-close): two answers, then the stream ends, as over gRPC.
    const keepAlive = gatewayStream(target.endpoint, "/v3/lease/keepalive", [{ ID: "4343" }, { ID: 999 }], { endBody: true });
    try {
      expect(await keepAlive.next()).toEqual({ result: { header: HEADER, ID: "4343", TTL: "30" } });
      expect(await keepAlive.next()).toEqual({ result: { header: HEADER, ID: "999" } }); // TTL 0: unknown
      expect(await keepAlive.status()).toBe(200);
      await expect(keepAlive.next()).rejects.toThrow("stream ended");
    } finally {
      keepAlive.close();
    }
    expect(await ok("/v3/kv/lease/revoke", { ID: "4343" })).toEqual({ header: HEADER });
    expect(await ok("/v3/kv/range", { key: b64("gw/leased") })).toEqual({ header: HEADER });
    expect(await ok("/v3/lease/timetolive", { ID: 4343 })).toEqual({ header: HEADER, ID: "4343", TTL: "-1" });
  });

  test("watch: a line per response, events with prev_kv, still streaming after the body ends", async () => {
    const watch = gatewayStream(target.endpoint, "/v3/watch", [{ create_request: { key: b64("gw/w"), prev_kv: true } }], { endBody: true });
    try {
      expect(await watch.next()).toEqual({ result: { header: HEADER, created: true } }); // watch id 0 is a zero value
      const put = await ok("/v3/kv/put", { key: b64("gw/w"), value: b64("1") });
      const rev = put.header.revision;
      await ok("/v3/kv/deleterange", { key: b64("gw/w") });
      const kv = { key: b64("gw/w"), create_revision: rev, mod_revision: rev, version: "1", value: b64("1") };
      const events = [];
      while (events.length < 2) events.push(...(await watch.next()).result.events);
      expect(events).toEqual([{ kv }, { type: "DELETE", kv: { key: b64("gw/w"), mod_revision: String(Number(rev) + 1) }, prev_kv: kv }]);
    } finally {
      watch.close();
    }
    expect((await ok("/v3/kv/range", { key: b64("gw/a") })).count).toBe("1"); // the closed stream left the server serving
  });

  test("the websocket form: a message per request, a message per answer line; a second watch on the same socket", async () => {
    const ws = await gatewayWebsocket(target.endpoint, "/v3/watch");
    try {
      ws.send({ create_request: { key: b64("gw/ws") } });
      expect(await ws.next()).toEqual({ result: { header: HEADER, created: true } });
      ws.send({ create_request: { key: b64("gw/ws2") } });
      expect(await ws.next()).toEqual({ result: { header: HEADER, watch_id: "1", created: true } });
      const rev = (await ok("/v3/kv/put", { key: b64("gw/ws2"), value: b64("2") })).header.revision;
      await ok("/v3/kv/put", { key: b64("gw/ws"), value: b64("1") });
      const first = await ws.next(), second = await ws.next();
      expect(first).toEqual({ result: { header: HEADER, watch_id: "1", events: [{ kv: { key: b64("gw/ws2"), create_revision: rev, mod_revision: rev, version: "1", value: b64("2") } }] } });
      expect(second.result.events[0].kv.value).toBe(b64("1"));
      expect(second.result.watch_id).toBeUndefined(); // watch 0
    } finally {
      await ws.close();
    }
    expect((await ok("/v3/kv/range", { key: b64("gw/ws") })).count).toBe("1"); // the server serves on
  });

  test("lock and election through the gateway: /v3/lock/lock, /v3/election/campaign and leader", async () => {
    await ok("/v3/lease/grant", { TTL: 30, ID: 4545 });
    const locked = await ok("/v3/lock/lock", { name: b64("gw-lock"), lease: "4545" });
    expect(locked).toEqual({ header: HEADER, key: b64(`gw-lock/${(4545).toString(16)}`) });
    expect(await ok("/v3/lock/unlock", { key: locked.key })).toEqual({ header: HEADER });
    const won = await ok("/v3/election/campaign", { name: b64("gw-el"), lease: 4545, value: b64("me") });
    expect(won.leader).toEqual({ name: b64("gw-el"), key: b64(`gw-el/${(4545).toString(16)}`), rev: won.header.revision, lease: "4545" });
    expect((await ok("/v3/election/leader", { name: b64("gw-el") })).kv.value).toBe(b64("me"));
    const none = await post("/v3/election/leader", { name: b64("gw-none") });
    expect([none.status, none.json]).toEqual([500, { error: "election: no leader", message: "election: no leader", code: 2 }]);
    await ok("/v3/kv/lease/revoke", { ID: 4545 });
  });

  test("CORS as etcd's default (--cors *): every HTTP answer allows any origin; OPTIONS is answered 200 and empty", async () => {
    const allowAny = { "access-control-allow-origin": "*", "access-control-allow-methods": CORS_METHODS, "access-control-allow-headers": CORS_HEADERS };
    const answer = await post("/v3/kv/range", { key: b64("gw/a") }, { origin: "http://app.example" });
    expect([answer.status, corsOf(answer.headers)]).toEqual([200, allowAny]);
    const failed = await post("/v3/kv/put", { key: "" }, { origin: "http://app.example" });
    expect([failed.status, corsOf(failed.headers)]).toEqual([400, allowAny]);
    const preflight = await gatewayPost(target.endpoint, "/v3/kv/put", undefined, { origin: "http://app.example", "access-control-request-method": "POST" }, "OPTIONS");
    expect([preflight.status, preflight.text, corsOf(preflight.headers)]).toEqual([200, "", allowAny]);
    const health = await gatewayPost(target.endpoint, "/health", undefined, {}, "GET");
    expect([health.status, corsOf(health.headers)]).toEqual([200, allowAny]);
  });

  test("a client that goes away while its Lock waits leaves no key behind", async () => {
    await ok("/v3/lease/grant", { TTL: 30, ID: 4646 });
    await ok("/v3/lease/grant", { TTL: 30, ID: 4747 });
    const held = await ok("/v3/lock/lock", { name: b64("gw-gone"), lease: 4646 });
    const waiting = gatewayStream(target.endpoint, "/v3/lock/lock", [{ name: b64("gw-gone"), lease: 4747 }], { endBody: true });
    const keys = async () => ((await ok("/v3/kv/range", { key: b64("gw-gone/"), range_end: b64("gw-gone0"), keys_only: true })).kvs ?? []).map((kv: { key: string }) => kv.key);
    const deadline = Date.now() + 5_000;
    while ((await keys()).length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(await keys()).toEqual([held.key, b64(`gw-gone/${(4747).toString(16)}`)]); // the waiter's key is in
    waiting.close();
    while ((await keys()).length > 1 && Date.now() < deadline + 5_000) await new Promise((r) => setTimeout(r, 50));
    expect(await keys()).toEqual([held.key]);
    await ok("/v3/kv/lease/revoke", { ID: 4646 });
    await ok("/v3/kv/lease/revoke", { ID: 4747 });
  });

  test("maintenance status and member list", async () => {
    const status = await ok("/v3/maintenance/status", {});
    expect(status).toMatchObject({ header: HEADER, version: expect.stringMatching(/^3\.4\./), dbSize: expect.stringMatching(/^\d+$/) });
    const members = await ok("/v3/cluster/member/list", {});
    expect(members.members).toEqual([expect.objectContaining({ name: "default", clientURLs: [`http://${target.endpoint}`] })]);
  });

  test("auth: the token from /v3/auth/authenticate goes in the Authorization header", async () => {
    await ok("/v3/auth/user/add", { name: "root", password: "rootpw" });
    await ok("/v3/auth/user/grant", { user: "root", role: "root" });
    await ok("/v3/auth/enable", {});
    try {
      const anonymous = await post("/v3/kv/range", { key: b64("gw/a") });
      expect([anonymous.status, anonymous.json]).toEqual([400, { error: "etcdserver: user name is empty", message: "etcdserver: user name is empty", code: 3 }]);
      const wrong = await post("/v3/auth/authenticate", { name: "root", password: "nope" });
      expect([wrong.status, wrong.json.code, wrong.json.message]).toEqual([400, 3, "etcdserver: authentication failed, invalid user ID or password"]);
      const { token } = await ok("/v3/auth/authenticate", { name: "root", password: "rootpw" });
      expect(typeof token).toBe("string");
      expect((await ok("/v3/kv/range", { key: b64("gw/a") }, { authorization: token })).count).toBe("1");
      await ok("/v3/auth/disable", {}, { authorization: token });
    } finally {
      // leave the server as found even if an assertion failed (the token may be the one that failed)
      const again = await post("/v3/auth/authenticate", { name: "root", password: "rootpw" });
      if (again.status === 200) await post("/v3/auth/disable", {}, { authorization: again.json.token });
    }
    expect((await ok("/v3/kv/range", { key: b64("gw/a") })).count).toBe("1");
  });
});

describe("gRPC gateway, mergekv's own", () => {
  let server: RunningServer;
  beforeAll(async () => { server = await startServer(); });
  afterAll(async () => { await server.stop(); });

  test("requests keep coming on a stream after its first answer (etcd's HTTP/1.1 server reads none then)", async () => {
    const watch = gatewayStream(server.endpoint, "/v3/watch", [{ create_request: { key: b64("own/w") } }], { endBody: false });
    try {
      expect(await watch.next()).toEqual({ result: { header: HEADER, created: true } });
      watch.send({ create_request: { key: b64("own/v"), watch_id: 7 } });
      expect(await watch.next()).toEqual({ result: { header: HEADER, watch_id: "7", created: true } });
      watch.send({ cancel_request: { watch_id: "7" } });
      expect(await watch.next()).toEqual({ result: { header: HEADER, watch_id: "7", canceled: true } });
    } finally {
      watch.close();
    }
  });

  /** Sends 20,000 keep-alives of lease `id` without reading the answers for a second, then expects every answer. */
  const keepAlivesUnread = async (s: { pause(): void; resume(): void; send(m: unknown): void; next(): Promise<any> }, id: string) => { // eslint-disable-line @typescript-eslint/no-explicit-any
    const REQUESTS = 20_000;
    s.pause();
    for (let i = 0; i < REQUESTS; i++) s.send({ ID: id });
    await new Promise((r) => setTimeout(r, 1_000));
    s.resume();
    for (let i = 0; i < REQUESTS; i++) expect((await s.next()).result.TTL).toBe("60");
  };

  test("a client that sends keep-alives without reading the answers is held back, then answered in full", async () => {
    await gatewayPost(server.endpoint, "/v3/lease/grant", { TTL: 60, ID: 6464 });
    const stream = gatewayStream(server.endpoint, "/v3/lease/keepalive", [], { endBody: false });
    try {
      await keepAlivesUnread(stream, "6464");
    } finally {
      stream.close();
    }
  }, 60_000);

  test("websocket: a client that stops reading is held back, then answered in full; closing the socket ends its watches", async () => {
    const watchers = async () => Number(/^mergekv_watchers (\d+)$/m.exec((await gatewayPost(server.endpoint, "/metrics", "", {}, "GET")).text)![1]);
    const before = await watchers();
    await gatewayPost(server.endpoint, "/v3/lease/grant", { TTL: 60, ID: 6565 });
    const keepAlive = await gatewayWebsocket(server.endpoint, "/v3/lease/keepalive");
    const watch = await gatewayWebsocket(server.endpoint, "/v3/watch");
    try {
      await keepAlivesUnread(keepAlive, "6565");
      watch.send({ create_request: { key: b64("own/ws") } });
      expect((await watch.next()).result.created).toBe(true);
      expect(await watchers()).toBe(before + 1);
    } finally {
      await keepAlive.close();
      await watch.close();
    }
    for (let i = 0; i < 50 && (await watchers()) !== before; i++) await new Promise((r) => setTimeout(r, 20));
    expect(await watchers()).toBe(before);
  }, 60_000);

  test("a bad request on a stream ends it with grpc-gateway's error line, naming the fault", async () => {
    const watch = gatewayStream(server.endpoint, "/v3/watch", [{ create_request: { key: b64("own/w") } }], { endBody: false });
    try {
      expect((await watch.next()).result.created).toBe(true);
      watch.send({ create_request: { key: "not base64!" } });
      expect(await watch.next()).toEqual({ error: { grpc_code: 3, http_code: 400, message: "WatchRequest.create_request.key: illegal base64 data at input byte 3", http_status: "Bad Request" } });
      await expect(watch.next()).rejects.toThrow("stream ended");
    } finally {
      watch.close();
    }
    // before any answer, the error sets the HTTP status
    const early = gatewayStream(server.endpoint, "/v3/lease/keepalive", [{ ID: "x" }], { endBody: true });
    expect(await early.next()).toEqual({ error: { grpc_code: 3, http_code: 400, message: 'LeaseKeepAliveRequest.ID: expected an integer (int64), got "x"', http_status: "Bad Request" } });
    expect(await early.status()).toBe(400);
  });

  test("snapshot streams the database in base64 chunks; it restores to the same keys", async () => {
    await gatewayPost(server.endpoint, "/v3/kv/put", { key: b64("own/snap"), value: b64("kept") });
    const snap = gatewayStream(server.endpoint, "/v3/maintenance/snapshot", [{}], { endBody: true });
    const chunks: Buffer[] = [];
    for (;;) {
      const line = await snap.next().catch((e: Error) => e);
      if (line instanceof Error) break;
      chunks.push(Buffer.from(line.result.blob ?? "", "base64"));
    }
    expect(await snap.status()).toBe(200);
    const file = path.join(await tempDir(), "gw.snapshot");
    await fs.writeFile(file, Buffer.concat(chunks));
    const restored = path.join(await tempDir(), "restored");
    const res = await run(process.execPath, [CLI, "snapshot", "restore", file, "--data-dir", restored]);
    expect(res.code).toBe(0);
    const again = await startServer({ dataDir: restored });
    try {
      expect((await gatewayPost(again.endpoint, "/v3/kv/range", { key: b64("own/snap") })).json.kvs[0].value).toBe(b64("kept"));
    } finally {
      await again.stop();
    }
  });

  test("a body over the transport's limit is answered RESOURCE_EXHAUSTED (HTTP 429) on a connection that stays up", async () => {
    const huge = `{"key":"${"A".repeat(65 * 1024 * 1024)}"}`; // past the 64 MiB transport limit
    const a = await gatewayPost(server.endpoint, "/v3/kv/put", huge);
    expect([a.status, a.json.code]).toEqual([429, 8]);
    expect(a.json.message).toMatch(/^request body over \d+ bytes$/);
    expect((await gatewayPost(server.endpoint, "/v3/kv/range", { key: b64("own/snap") })).status).toBe(200);
  }, 60_000);

  test("over HTTP/2 in clear text: a non-gRPC content type on a /v3/ path is the gateway's", async () => {
    const session = http2.connect(`http://${server.endpoint}`);
    try {
      const a = await http2Post(session, "/v3/kv/range", JSON.stringify({ key: b64("own/snap") }));
      expect([a.status, JSON.parse(a.body).count]).toEqual([200, "1"]);
    } finally {
      session.close();
    }
  });
});

test("--cors with an origin: only that origin is named back; others get no CORS headers", async () => {
  const server = await startServer({ args: ["--cors", "http://a.example,http://b.example"] });
  try {
    const a = await gatewayPost(server.endpoint, "/v3/kv/range", { key: b64("k") }, { origin: "http://b.example" });
    expect(corsOf(a.headers)).toEqual({ "access-control-allow-origin": "http://b.example", "access-control-allow-methods": CORS_METHODS, "access-control-allow-headers": CORS_HEADERS });
    const other = await gatewayPost(server.endpoint, "/v3/kv/range", { key: b64("k") }, { origin: "http://evil.example" });
    expect([other.status, corsOf(other.headers)]).toEqual([200, {}]);
  } finally {
    await server.stop();
  }
});

test("--enable-grpc-gateway=false: /v3/ paths are not found; /health still answers", async () => {
  const server = await startServer({ args: ["--enable-grpc-gateway=false"] });
  try {
    const a = await gatewayPost(server.endpoint, "/v3/kv/range", { key: b64("k") });
    expect(a.status).toBe(404);
    expect((await gatewayPost(server.endpoint, "/health", undefined, {}, "GET")).json).toEqual({ health: "true", reason: "" });
  } finally {
    await server.stop();
  }
});
