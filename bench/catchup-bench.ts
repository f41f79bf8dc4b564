/**
 * Watch catch-up: a watch on a prefix holding BENCH_CATCHUP_KEYS keys,
 * started BENCH_CATCHUP_REVISIONS revisions back, all of them writes outside
 * the prefix (so its history has nothing for it), while one writer puts one
 * value at a time. Reports how long the watch took to be created and to
 * catch up (to receive a put made just after it was created), and the
 * writer's put latency before and during the catch-up: whether reading a
 * watch's history holds up the writes of everyone else.
 */
import { Etcd3 } from "etcd3";
import { BenchConfig } from "./config";
import { ServerHandle } from "./servers";
import { codec, H2Conn, Issue3Knobs, now } from "./issue3-common";
import { log } from "./common";
import { percentile } from "./stats";

const PREFIX = "bench-catchup/";
/** etcd's default --max-txn-ops: the prefix's keys are written 128 to a Txn. */
const TXN_OPS_MAX = 128;
const FILL_LOOPS = 64;
/** The writer's latency before the watch, as the baseline. */
const BASELINE_MS = 1_000;
/** The catch-up window ends this long after the watch caught up. */
const AFTER_MS = 200;
const CATCH_UP_TIMEOUT_MS = 120_000;

export interface CatchUpRun {
  system: string;
  keys: number;
  revisionsBehind: number;
  /** Watch request -> created; watch request -> the put made after creation arrived (caught up). */
  createdMs: number;
  caughtUpMs: number;
  putsBefore: number;
  putBeforeP99Ms: number;
  putBeforeMaxMs: number;
  putsDuring: number;
  putDuringP99Ms: number;
  putDuringMaxMs: number;
}

export async function runCatchUp(cfg: BenchConfig, knobs: Issue3Knobs, server: ServerHandle): Promise<CatchUpRun> {
  const conns = [new H2Conn(server.endpoint), new H2Conn(server.endpoint)];
  const writerConn = new H2Conn(server.endpoint);
  const client = new Etcd3({ hosts: `http://${server.endpoint}` });
  const put = codec("KV", "Put");
  const value = Buffer.alloc(cfg.valueBytes, 0x63);
  const inRange = (i: number) => Buffer.from(`${PREFIX}a/${String(i).padStart(8, "0")}`);
  try {
    const t0 = now();
    await fillRange(conns, knobs.catchUpKeys, inRange, value);
    const first = put.responseDeserialize(await conns[0].unary("/etcdserverpb.KV/Put", put.requestSerialize({ key: Buffer.from(`${PREFIX}b/0`), value })));
    const startRevision = Number((first.header as { revision: string }).revision);
    await fillOutside(conns, knobs.catchUpRevisions - 1, value);
    log(`catchup ${server.system}: ${knobs.catchUpKeys} keys in range, ${knobs.catchUpRevisions} revisions outside it, in ${((now() - t0) / 1000).toFixed(1)} s`);

    const latencies: [number, number][] = []; // [start, ms]
    let writing = true;
    const writer = (async () => {
      for (let i = 0; writing; i++) {
        const s = now();
        await writerConn.unary("/etcdserverpb.KV/Put", put.requestSerialize({ key: Buffer.from(`${PREFIX}c/${i % 16}`), value }));
        latencies.push([s, now() - s]);
      }
    })();
    await new Promise((r) => setTimeout(r, BASELINE_MS));
    const asked = now();
    const watcher = await client.watch().prefix(`${PREFIX}a/`).startRevision(String(startRevision)).create();
    const createdMs = now() - asked;
    const marker = `${PREFIX}a/marker`;
    const caughtUp = new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the watch did not catch up in ${CATCH_UP_TIMEOUT_MS} ms`)), CATCH_UP_TIMEOUT_MS);
      watcher.on("put", (kv) => {
        if (kv.key.toString() !== marker) return;
        clearTimeout(timer);
        resolve(now());
      });
    });
    await client.put(marker).value("caught up");
    const caughtUpAt = await caughtUp;
    await new Promise((r) => setTimeout(r, AFTER_MS));
    writing = false;
    await writer;
    await watcher.cancel();
    const before = latencies.filter(([s]) => s < asked).map(([, ms]) => ms);
    const during = latencies.filter(([s, ms]) => s + ms >= asked && s <= caughtUpAt + AFTER_MS).map(([, ms]) => ms);
    const p99 = (xs: number[]) => percentile(Float64Array.from(xs).sort(), 99);
    return {
      system: server.system, keys: knobs.catchUpKeys, revisionsBehind: knobs.catchUpRevisions, createdMs, caughtUpMs: caughtUpAt - asked,
      putsBefore: before.length, putBeforeP99Ms: p99(before), putBeforeMaxMs: Math.max(...before),
      putsDuring: during.length, putDuringP99Ms: p99(during), putDuringMaxMs: Math.max(...during),
    };
  } finally {
    client.close();
    for (const c of [...conns, writerConn]) c.close();
  }
}

/** `keys` keys named by `key`, TXN_OPS_MAX to a Txn (the bulk-delete phase fills its prefix with it too). */
export async function fillRange(conns: H2Conn[], keys: number, key: (i: number) => Buffer, value: Buffer): Promise<void> {
  const txn = codec("KV", "Txn");
  let next = 0;
  await Promise.all(Array.from({ length: 8 }, async (_, loop) => {
    for (let from = next; from < keys; from = next) {
      next += TXN_OPS_MAX;
      const success = [];
      for (let i = from; i < Math.min(keys, from + TXN_OPS_MAX); i++) success.push({ request_put: { key: key(i), value } });
      const r = txn.responseDeserialize(await conns[loop % conns.length].unary("/etcdserverpb.KV/Txn", txn.requestSerialize({ compare: [], success, failure: [] })));
      if (!r.succeeded) throw new Error("a fill Txn did not succeed");
    }
  }));
}

/** `revisions` puts outside the watched range, one revision each. */
async function fillOutside(conns: H2Conn[], revisions: number, value: Buffer): Promise<void> {
  const put = codec("KV", "Put");
  let next = 0;
  await Promise.all(Array.from({ length: FILL_LOOPS }, async (_, loop) => {
    for (let i = next++; i < revisions; i = next++) {
      await conns[loop % conns.length].unary("/etcdserverpb.KV/Put", put.requestSerialize({ key: Buffer.from(`${PREFIX}b/${i % 1_000}`), value }));
    }
  }));
}
