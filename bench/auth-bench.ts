/**
 * Auth-enabled puts: on each server, first BENCH_AUTH_CLIENTS concurrent put
 * loops (default 64; random key of BENCH_AUTH_KEYS under a prefix, 256-byte
 * values) without auth, then enable auth (user root with role root, user
 * `bench` with a readwrite role on the prefix), authenticate as `bench`, and
 * run the same loops with the token in the `token` metadata, then disable auth
 * and run them once more without (a bracket against drift). The keys are
 * written once, unmeasured, before the first run. Same server,
 * same client, same keys: the difference is what auth costs.
 */
import { BenchConfig } from "./config";
import { ServerHandle } from "./servers";
import { log } from "./common";
import { closedLoop, codec, H2Conn, Issue3Knobs, LoopFigures } from "./issue3-common";
import { prng } from "./workload";

const PREFIX = "bench-auth/";
const RANGE_END = "bench-auth0";
const USER = "bench";
const PASSWORD = "bench-password";
const ROOT_PASSWORD = "root-password";

export interface AuthRun {
  system: string;
  clients: number;
  connections: number;
  noAuth: LoopFigures;
  auth: LoopFigures;
  /** Without auth again, after AuthDisable. */
  noAuthAfter: LoopFigures;
  setupMs: number;
  /** Unmeasured: every key written once before the no-auth run. */
  preloadMs: number;
}

/** Root user and role, a readwrite role on the prefix, a user holding it, auth on; resolves to that user's token. */
async function enableAuth(conn: H2Conn): Promise<string> {
  await conn.call("Auth", "UserAdd", { name: "root", password: ROOT_PASSWORD });
  await conn.call("Auth", "RoleAdd", { name: "root" });
  await conn.call("Auth", "UserGrantRole", { user: "root", role: "root" });
  await conn.call("Auth", "RoleAdd", { name: "bench-rw" });
  await conn.call("Auth", "RoleGrantPermission", { name: "bench-rw", perm: { permType: "Readwrite", key: Buffer.from(PREFIX), range_end: Buffer.from(RANGE_END) } });
  await conn.call("Auth", "UserAdd", { name: USER, password: PASSWORD });
  await conn.call("Auth", "UserGrantRole", { user: USER, role: "bench-rw" });
  await conn.call("Auth", "AuthEnable", {});
  const res = await conn.call("Auth", "Authenticate", { name: USER, password: PASSWORD });
  const token = String(res.token ?? "");
  if (!token) throw new Error("Authenticate returned no token");
  return token;
}

/** Writes every key once (unmeasured), so both runs write over existing keys and neither pays a fresh server's first writes. */
async function preload(cfg: BenchConfig, knobs: Issue3Knobs, conns: H2Conn[]): Promise<number> {
  const put = codec("KV", "Put");
  const value = Buffer.alloc(cfg.valueBytes, 0x70);
  const t = performance.now();
  let next = 0;
  await Promise.all(Array.from({ length: knobs.authClients }, async (_, loop) => {
    while (next < knobs.authKeys) {
      const key = Buffer.from(`${PREFIX}${String(next++).padStart(8, "0")}`);
      await conns[loop % conns.length].unary("/etcdserverpb.KV/Put", put.requestSerialize({ key, value }));
    }
  }));
  return performance.now() - t;
}

async function putLoops(cfg: BenchConfig, knobs: Issue3Knobs, server: ServerHandle, conns: H2Conn[], metadata?: Record<string, string>, warmupSeconds = cfg.warmupSeconds): Promise<LoopFigures> {
  const put = codec("KV", "Put");
  const keys = Array.from({ length: knobs.authKeys }, (_, i) => Buffer.from(`${PREFIX}${String(i).padStart(8, "0")}`));
  // Every put writes a value no key holds yet (it starts with a count): mergekv's Automerge
  // skips a put of the value a key already has, a saving etcd does not get.
  const value = Buffer.alloc(Math.max(cfg.valueBytes, 8), 0x76);
  const randoms = Array.from({ length: knobs.authClients }, (_, i) => prng(0xa17 + i));
  let count = 0;
  return closedLoop(knobs.authClients, warmupSeconds * 1000, cfg.seconds * 1000, server.proc.pid, async (loop) => {
    const key = keys[Math.floor(randoms[loop]() * keys.length)];
    value.writeDoubleLE(count++, 0);
    await conns[loop % conns.length].unary("/etcdserverpb.KV/Put", put.requestSerialize({ key, value }), metadata);
  });
}

/**
 * Enables auth, then disables it again. The first run without auth is
 * preceded by `knobs.warmupSeconds` of its load: without it, the runs after
 * it met a server the first had warmed up, and mergekv's puts with auth came
 * out faster than its puts without (sessions 5-7).
 */
export async function runAuth(cfg: BenchConfig, knobs: Issue3Knobs, server: ServerHandle): Promise<AuthRun> {
  const connections = Math.max(1, Math.min(cfg.threads, knobs.authClients));
  const conns = Array.from({ length: connections }, () => new H2Conn(server.endpoint));
  try {
    const preloadMs = await preload(cfg, knobs, conns);
    log(`  ${server.system}: preloaded ${knobs.authKeys} keys in ${preloadMs.toFixed(0)} ms`);
    const noAuth = await putLoops(cfg, knobs, server, conns, undefined, Math.max(cfg.warmupSeconds, knobs.warmupSeconds));
    const t = performance.now();
    const token = await enableAuth(conns[0]);
    const setupMs = performance.now() - t;
    log(`  ${server.system}: auth enabled and token obtained in ${setupMs.toFixed(0)} ms`);
    // A put outside the granted prefix must be refused: proves the token is checked, not ignored.
    const denied = await conns[0].unary("/etcdserverpb.KV/Put", codec("KV", "Put").requestSerialize({ key: Buffer.from("outside"), value: Buffer.from("x") }), { token }).then(() => false, () => true);
    if (!denied) throw new Error(`${server.system}: a put outside the user's permission succeeded with auth enabled`);
    const auth = await putLoops(cfg, knobs, server, conns, { token });
    // Bracket: auth off again (as root), same loops, so a server that speeds up or slows down over time shows.
    const rootToken = String((await conns[0].call("Auth", "Authenticate", { name: "root", password: ROOT_PASSWORD })).token ?? "");
    await conns[0].call("Auth", "AuthDisable", {}, { token: rootToken });
    const noAuthAfter = await putLoops(cfg, knobs, server, conns);
    return { system: server.system, clients: knobs.authClients, connections, preloadMs, noAuth, auth, noAuthAfter, setupMs };
  } finally {
    for (const c of conns) c.close();
  }
}
