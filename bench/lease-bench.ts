/**
 * Lease churn: BENCH_LEASE_LOOPS concurrent loops (default 16), each running
 * LeaseGrant (TTL 60 s) -> Put of its own key with that lease -> LeaseRevoke,
 * back to back. One op is the whole cycle; its latency is the cycle's, and
 * each call's median is reported too (where a cycle's time goes). The loops
 * share one HTTP/2 connection per load thread's worth of loops (a few
 * connections, like the harness).
 */
import { BenchConfig } from "./config";
import { ServerHandle } from "./servers";
import { closedLoop, codec, H2Conn, Issue3Knobs, LoopFigures, now } from "./issue3-common";
import { percentile } from "./stats";

const TTL_S = 60;

export interface LeaseRun extends LoopFigures {
  system: string;
  loops: number;
  connections: number;
  /** Median latency of each call, over the cycles started in the measured window. */
  grantP50Ms: number;
  putP50Ms: number;
  revokeP50Ms: number;
}

export async function runLease(cfg: BenchConfig, knobs: Issue3Knobs, server: ServerHandle): Promise<LeaseRun> {
  const connections = Math.max(1, Math.min(cfg.threads, knobs.leaseLoops));
  const conns = Array.from({ length: connections }, () => new H2Conn(server.endpoint));
  const grant = codec("Lease", "LeaseGrant");
  const revoke = codec("Lease", "LeaseRevoke");
  const put = codec("KV", "Put");
  const value = Buffer.alloc(cfg.valueBytes, 0x6c);
  const keys = Array.from({ length: knobs.leaseLoops }, (_, i) => Buffer.from(`bench-lease/${String(i).padStart(4, "0")}`));
  const calls = { grant: [] as number[], put: [] as number[], revoke: [] as number[] };
  const recordFrom = now() + cfg.warmupSeconds * 1000; // closedLoop's window starts with it
  try {
    const figures = await closedLoop(knobs.leaseLoops, cfg.warmupSeconds * 1000, cfg.seconds * 1000, server.proc.pid, async (loop) => {
      const conn = conns[loop % connections];
      const t0 = now();
      const g = grant.responseDeserialize(await conn.unary("/etcdserverpb.Lease/LeaseGrant", grant.requestSerialize({ TTL: TTL_S, ID: 0 })));
      const id = String(g.ID);
      if (id === "0") throw new Error(`LeaseGrant returned ID 0${g.error ? `: ${String(g.error)}` : ""}`);
      const t1 = now();
      await conn.unary("/etcdserverpb.KV/Put", put.requestSerialize({ key: keys[loop], value, lease: id }));
      const t2 = now();
      await conn.unary("/etcdserverpb.Lease/LeaseRevoke", revoke.requestSerialize({ ID: id }));
      if (t0 < recordFrom) return;
      calls.grant.push(t1 - t0);
      calls.put.push(t2 - t1);
      calls.revoke.push(now() - t2);
    });
    const p50 = (xs: number[]) => percentile(Float64Array.from(xs).sort(), 50);
    return { system: server.system, loops: knobs.leaseLoops, connections, ...figures, grantP50Ms: p50(calls.grant), putP50Ms: p50(calls.put), revokeP50Ms: p50(calls.revoke) };
  } finally {
    for (const c of conns) c.close();
  }
}
