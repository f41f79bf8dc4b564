/**
 * Leases across a crash of the real server (SIGKILL, then start again on the
 * same data directory): every granted lease is back with its full TTL and its
 * keys, the frontend workers accept Puts naming it, revoked leases stay gone,
 * and expiry runs again after the restart.
 */
import { rawClient, RawClient, b, grpcError, Msg } from "../helpers/grpc";
import { startServer, RunningServer } from "../helpers/server";
import { promises as fs } from "node:fs";

const NOT_FOUND = 5;
/** More than one frontend worker: each must learn the restored leases. */
const ARGS = ["--frontends", "2"];
/** An expiry the test waits for longer than this is not coming. */
const EXPIRY_WAIT_MS = 10_000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let server: RunningServer | undefined;
let c: RawClient | undefined;

afterEach(async () => {
  c?.close();
  if (server) {
    await server.stop();
    await fs.rm(server.dataDir, { recursive: true, force: true });
  }
});

test("leases survive a crash with their full TTL and keys; revoked ones stay gone; expiry runs again", async () => {
  server = await startServer({ args: ARGS });
  c = rawClient(server.endpoint);
  const lease = (method: string, req: Msg) => c!.call("Lease", method, req);
  const long = (await lease("LeaseGrant", { TTL: "60" })).ID;
  const short = (await lease("LeaseGrant", { ID: "4242", TTL: "4" })).ID;
  const revoked = (await lease("LeaseGrant", { TTL: "60" })).ID;
  for (let i = 0; i < 8; i++) await c.call("KV", "Put", { key: b(`long/${i}`), value: b(`${i}`), lease: long });
  await c.call("KV", "Put", { key: b("short/a"), value: b("a"), lease: short });
  await c.call("KV", "Put", { key: b("revoked/a"), value: b("a"), lease: revoked });
  await lease("LeaseRevoke", { ID: revoked });
  await sleep(1_100); // the long lease's remaining time drops below its TTL
  expect(Number((await lease("LeaseTimeToLive", { ID: long })).TTL)).toBeLessThan(60);
  c.close();
  expect(await server.kill("SIGKILL")).toBeNull();

  server = await startServer({ dataDir: server.dataDir, args: ARGS });
  c = rawClient(server.endpoint);
  expect((await lease("LeaseLeases", {})).leases.map((l: Msg) => l.ID).sort()).toEqual([long, short].sort());
  const ttl = await lease("LeaseTimeToLive", { ID: long, keys: true });
  expect([ttl.grantedTTL, Number(ttl.TTL) >= 59]).toEqual(["60", true]);
  expect(ttl.keys.map((k: Buffer) => k.toString()).sort()).toEqual(Array.from({ length: 8 }, (_, i) => `long/${i}`));
  expect((await lease("LeaseTimeToLive", { ID: revoked })).TTL).toBe("-1");
  // Every frontend worker knows the restored leases: keys spread over all of them.
  for (let i = 0; i < 8; i++) await c.call("KV", "Put", { key: b(`again/${i}`), value: b("v"), lease: long });
  expect(await grpcError(c.call("KV", "Put", { key: b("x"), value: b("v"), lease: revoked }))).toEqual({ code: NOT_FOUND, details: "etcdserver: requested lease not found" });

  // The short lease got its full TTL again, then runs out by itself.
  const deadline = Date.now() + EXPIRY_WAIT_MS;
  while ((await c.call("KV", "Range", { key: b("short/a") })).kvs.length > 0) {
    if (Date.now() > deadline) throw new Error("the restored short lease did not expire");
    await sleep(100);
  }
  expect((await lease("LeaseTimeToLive", { ID: short })).TTL).toBe("-1");
  const revoke = await lease("LeaseRevoke", { ID: long });
  const left = await c.call("KV", "Range", { key: b("\0"), range_end: b("\0") });
  expect(left.kvs.map((kv: Msg) => kv.key.toString())).toEqual([]);
  expect(left.header.revision).toBe(revoke.header.revision);
}, 60_000);
