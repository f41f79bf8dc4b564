/**
 * Bulk delete: BENCH_BULK_DELETE_KEYS keys (default 9,000, what
 * `etcdctl check perf --load s` writes before deleting them) of 1 KiB under
 * a prefix, then one DeleteRange of the whole prefix, while PROBES writers
 * each put their own key one value at a time. Reports how long the delete
 * took and the probes' longest put while it ran, against their p99 before
 * it: whether one big write holds up everyone else's.
 */
import { BenchConfig } from "./config";
import { ServerHandle } from "./servers";
import { codec, H2Conn, Issue3Knobs, now } from "./issue3-common";
import { fillRange } from "./catchup-bench";
import { log } from "./common";
import { percentile } from "./stats";

const PREFIX = "bench-bulk-delete/";
/** check perf's value size. */
const VALUE_BYTES = 1_024;
/** Writers putting during the delete, each to its own key (spread over mergekv's frontends by their keys' buckets). */
const PROBES = 8;
/** The probes' latency before the delete, as the baseline. */
const BASELINE_MS = 1_000;
/** The probes go on this long after the delete is answered (what it held up may finish after it). */
const AFTER_MS = 300;

export interface BulkDeleteRun {
  system: string;
  keys: number;
  deleted: number;
  deleteMs: number;
  probePutsBefore: number;
  probeBeforeP99Ms: number;
  probePutsDuring: number;
  probeDuringP99Ms: number;
  probeDuringMaxMs: number;
}

export async function runBulkDelete(knobs: Issue3Knobs, server: ServerHandle): Promise<BulkDeleteRun> {
  const conns = [new H2Conn(server.endpoint), new H2Conn(server.endpoint)];
  const probeConn = new H2Conn(server.endpoint);
  const put = codec("KV", "Put");
  const deleteRange = codec("KV", "DeleteRange");
  const value = Buffer.alloc(VALUE_BYTES, 0x64);
  try {
    const t0 = now();
    await fillRange(conns, knobs.bulkDeleteKeys, (i) => Buffer.from(`${PREFIX}k/${String(i).padStart(8, "0")}`), value);
    log(`bulkdelete ${server.system}: ${knobs.bulkDeleteKeys} keys of ${VALUE_BYTES} B in ${((now() - t0) / 1000).toFixed(1)} s`);
    const latencies: [number, number][] = []; // [start, ms]
    let probing = true;
    const probes = Array.from({ length: PROBES }, async (_, p) => {
      for (let i = 0; probing; i++) {
        const s = now();
        await probeConn.unary("/etcdserverpb.KV/Put", put.requestSerialize({ key: Buffer.from(`${PREFIX}probe/${p}`), value: Buffer.alloc(16) }));
        latencies.push([s, now() - s]);
      }
    });
    await new Promise((r) => setTimeout(r, BASELINE_MS));
    const asked = now();
    const r = deleteRange.responseDeserialize(await conns[0].unary("/etcdserverpb.KV/DeleteRange", deleteRange.requestSerialize({ key: Buffer.from(`${PREFIX}k/`), range_end: Buffer.from(`${PREFIX}k0`) })));
    const answered = now();
    await new Promise((res) => setTimeout(res, AFTER_MS));
    probing = false;
    await Promise.all(probes);
    const deleted = Number(r.deleted);
    if (deleted !== knobs.bulkDeleteKeys) throw new Error(`${server.system}: the delete removed ${deleted} keys, not ${knobs.bulkDeleteKeys}`);
    const before = latencies.filter(([s, ms]) => s + ms < asked).map(([, ms]) => ms);
    const during = latencies.filter(([s, ms]) => s + ms >= asked && s <= answered).map(([, ms]) => ms);
    const p99 = (xs: number[]) => percentile(Float64Array.from(xs).sort(), 99);
    return {
      system: server.system, keys: knobs.bulkDeleteKeys, deleted, deleteMs: answered - asked,
      probePutsBefore: before.length, probeBeforeP99Ms: p99(before),
      probePutsDuring: during.length, probeDuringP99Ms: p99(during), probeDuringMaxMs: Math.max(...during),
    };
  } finally {
    for (const c of [...conns, probeConn]) c.close();
  }
}
