/**
 * What internal replication costs, to tune it by (`mergekv replication`):
 * puts at each factor from 1 to the server's frontends, set on the running
 * server through mergekvpb.Replication, each under two loads: REPLICATION_LOOPS
 * concurrent loops of puts to REPLICATION_KEYS keys, and one loop (a put at
 * a time). etcd has no such factor: it runs the same two loads once, as the
 * reference. The factor is put back to 1 at the end.
 */
import { BenchConfig } from "./config";
import { ServerHandle } from "./servers";
import { closedLoop, codec, H2Conn, LoopFigures } from "./issue3-common";
import { AdminClient } from "../src/admin-client";

/** Concurrent put loops of the throughput load (the lease churn's count). */
export const REPLICATION_LOOPS = 16;
/** Keys the loops write: spread over the buckets, so over every frontend. */
const REPLICATION_KEYS = 1_000;

export interface ReplicationLoad {
  /** The internal replication factor; 0 for etcd. */
  internal: number;
  concurrent: LoopFigures;
  sequential: LoopFigures;
}

export interface ReplicationRun {
  system: string;
  frontends: number;
  loads: ReplicationLoad[];
}

async function putLoads(cfg: BenchConfig, server: ServerHandle, internal: number): Promise<ReplicationLoad> {
  const conns = [new H2Conn(server.endpoint), new H2Conn(server.endpoint)];
  const put = codec("KV", "Put");
  const value = Buffer.alloc(cfg.valueBytes, 0x72);
  const keys = Array.from({ length: REPLICATION_KEYS }, (_, i) => Buffer.from(`bench-replication/${String(i).padStart(4, "0")}`));
  const op = (loop: number, seq: number) => conns[loop % conns.length].unary("/etcdserverpb.KV/Put", put.requestSerialize({ key: keys[(loop * 7919 + seq) % keys.length], value })).then(() => undefined);
  try {
    const concurrent = await closedLoop(REPLICATION_LOOPS, cfg.warmupSeconds * 1000, cfg.seconds * 1000, server.proc.pid, op);
    const sequential = await closedLoop(1, cfg.warmupSeconds * 1000, cfg.seconds * 1000, server.proc.pid, op);
    return { internal, concurrent, sequential };
  } finally {
    for (const c of conns) c.close();
  }
}

export async function runReplication(cfg: BenchConfig, server: ServerHandle): Promise<ReplicationRun> {
  if (server.system !== "mergekv") return { system: server.system, frontends: 0, loads: [await putLoads(cfg, server, 0)] };
  const admin = new AdminClient({ endpoints: server.endpoint });
  try {
    const frontends = Number((await admin.call("mergekvpb.Replication", "Status", {})).frontends);
    const loads: ReplicationLoad[] = [];
    try {
      for (let k = 1; k <= frontends; k++) {
        await admin.call("mergekvpb.Replication", "Set", { internal: k });
        loads.push(await putLoads(cfg, server, k));
      }
    } finally {
      await admin.call("mergekvpb.Replication", "Set", { internal: 1 });
    }
    return { system: server.system, frontends, loads };
  } finally {
    admin.close();
  }
}
