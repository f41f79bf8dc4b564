/**
 * Maintenance: HashKV (equal state, equal hash, on any server), the NOSPACE
 * alarm raised by --quota-backend-bytes, and alarms kept across a restart.
 * (The alarms' answers and what they refuse are checked against etcd in
 * test/python-client.)
 */
import { Etcd3 } from "etcd3";
import { startServer, RunningServer } from "../helpers/server";
import { run } from "../helpers/etcdctl";
import { gatewayPost } from "../helpers/gateway";
import { grpcError, rawClient } from "../helpers/grpc";

async function hashKV(server: RunningServer, rev = 0): Promise<{ hash: number; revision: number }> {
  const res = await run("etcdctl", ["--endpoints", server.endpoint, "endpoint", "hashkv", "-w", "json", ...(rev ? ["--rev", String(rev)] : [])]);
  expect(res.code).toBe(0);
  const [entry] = JSON.parse(res.stdout);
  return { hash: entry.HashKV.hash ?? 0, revision: entry.HashKV.header.revision };
}

test("HashKV: same keys and values give the same hash on two servers, whatever the write order", async () => {
  const [a, b] = await Promise.all([startServer(), startServer()]);
  const ca = new Etcd3({ hosts: `http://${a.endpoint}` });
  const cb = new Etcd3({ hosts: `http://${b.endpoint}` });
  try {
    for (let i = 0; i < 30; i++) await ca.put(`k${i}`).value(`v${i}`).exec();
    await cb.put("k0").value("something else").exec(); // a different history on b
    for (let i = 29; i >= 0; i--) await cb.put(`k${i}`).value(`v${i}`).exec();
    const ha = await hashKV(a), hb = await hashKV(b);
    expect(ha.hash).toBe(hb.hash);
    expect(ha.revision).not.toBe(hb.revision); // revisions are each server's own; the hash leaves them out
    const before = ha;
    await ca.put("k3").value("changed").exec();
    const after = await hashKV(a);
    expect(after.hash).not.toBe(before.hash);
    expect((await hashKV(a, before.revision)).hash).toBe(before.hash); // hashing an older revision
  } finally {
    ca.close();
    cb.close();
    await Promise.all([a.stop(), b.stop()]);
  }
}, 60_000);

test("--quota-backend-bytes: NOSPACE refuses puts with etcd's error, allows reads and deletes, and can be disarmed", async () => {
  const server = await startServer({ args: ["--quota-backend-bytes", "150000"] });
  const client = new Etcd3({ hosts: `http://${server.endpoint}` });
  try {
    const big = "x".repeat(8000);
    for (let i = 0; i < 40; i++) await client.put(`big${i}`).value(big).exec().catch(() => undefined);
    let alarms = "";
    for (let tries = 0; tries < 50 && !alarms.includes("NOSPACE"); tries++) {
      alarms = (await run("etcdctl", ["--endpoints", server.endpoint, "alarm", "list"])).stdout;
      if (!alarms.includes("NOSPACE")) await new Promise((r) => setTimeout(r, 200));
    }
    expect(alarms).toMatch(/alarm:NOSPACE/);
    expect(server.output()).toContain("alarm NOSPACE");
    const refused = await run("etcdctl", ["--endpoints", server.endpoint, "put", "more", "data"]);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain("etcdserver: mvcc: database space exceeded");
    // A fresh client: the first one's circuit breaker opened on the refused puts.
    const reader = new Etcd3({ hosts: `http://${server.endpoint}` });
    expect(await reader.get("big0").string()).toBe(big);
    await reader.delete().key("big0").exec();
    expect(await reader.get("big0").string()).toBeNull();
    reader.close();
    const disarm = await run("etcdctl", ["--endpoints", server.endpoint, "alarm", "disarm"]);
    expect(disarm.code).toBe(0);
  } finally {
    client.close();
    await server.stop();
  }
}, 60_000);

test("alarms are kept across a restart until disarmed, as etcd keeps them in its backend", async () => {
  const alarm = (endpoint: string, action: string, memberID: string, type: string) =>
    gatewayPost(endpoint, "/v3/maintenance/alarm", { action, memberID, alarm: type });
  const list = async (endpoint: string) => ((await alarm(endpoint, "GET", "0", "NONE")).json.alarms ?? []).map((a: { memberID?: string; alarm?: string }) => `${a.memberID ?? 0}:${a.alarm ?? "NONE"}`).sort();
  let server = await startServer();
  const dataDir = server.dataDir;
  try {
    expect((await alarm(server.endpoint, "ACTIVATE", "7", "CORRUPT")).json.alarms).toEqual([{ memberID: "7", alarm: "CORRUPT" }]);
    expect((await alarm(server.endpoint, "ACTIVATE", "0", "NOSPACE")).json.alarms).toEqual([{ alarm: "NOSPACE" }]);
    await server.stop();
    server = await startServer({ dataDir });
    expect(await list(server.endpoint)).toEqual(["0:NOSPACE", "7:CORRUPT"]);
    const put = await gatewayPost(server.endpoint, "/v3/kv/put", { key: "YQ==", value: "Yg==" });
    expect([put.status, put.json.message]).toEqual([500, "etcdserver: corrupt cluster"]);
    expect((await alarm(server.endpoint, "DEACTIVATE", "7", "CORRUPT")).json.alarms).toEqual([{ memberID: "7", alarm: "CORRUPT" }]);
    expect((await alarm(server.endpoint, "DEACTIVATE", "7", "CORRUPT")).json.alarms).toBeUndefined(); // nothing left to disarm
    await server.stop();
    server = await startServer({ dataDir });
    expect(await list(server.endpoint)).toEqual(["0:NOSPACE"]);
    const refused = await gatewayPost(server.endpoint, "/v3/kv/put", { key: "YQ==", value: "Yg==" });
    expect(refused.json.message).toBe("etcdserver: mvcc: database space exceeded");
    // An alarm type or action this server does not know (a gRPC client may send any number) is refused, not stored.
    const c = rawClient(server.endpoint);
    try {
      expect(await grpcError(c.call("Maintenance", "Alarm", { action: 1, memberID: "7", alarm: 9 }))).toEqual({ code: 3, details: "mergekv: unknown alarm type 9" });
      expect(await grpcError(c.call("Maintenance", "Alarm", { action: 5, memberID: "7", alarm: 1 }))).toEqual({ code: 3, details: "mergekv: unknown alarm action 5" });
    } finally {
      c.close();
    }
    expect(await list(server.endpoint)).toEqual(["0:NOSPACE"]);
    await server.stop();
    server = await startServer({ dataDir }); // and the server starts again
    expect(await list(server.endpoint)).toEqual(["0:NOSPACE"]);
  } finally {
    await server.stop();
  }
}, 60_000);
