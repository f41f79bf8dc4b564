/**
 * Multi-key Txns, one at a time: for each size in TXN_SIZES, a Txn putting
 * that many keys (fixed keys, so spread over buckets and, on mergekv, over
 * its frontends), sent TXN_ROUNDS times in a row after TXN_WARMUP_ROUNDS
 * unmeasured ones. On mergekv such a Txn borrows the documents of the
 * buckets its frontend does not own; the rounds show whether a Txn costs
 * more as the same keys' history grows.
 */
import { ServerHandle } from "./servers";
import { codec, H2Conn, now } from "./issue3-common";
import { percentile } from "./stats";

export const TXN_SIZES = [1, 2, 10, 50];
const TXN_WARMUP_ROUNDS = 50;
const TXN_ROUNDS = 300;
const VALUE_BYTES = 64;

export interface TxnSizeFigures {
  keys: number;
  rounds: number;
  p50Ms: number;
  p99Ms: number;
  /** Median of the first and the last 50 measured rounds: does a Txn slow down as its keys' history grows? */
  firstP50Ms: number;
  lastP50Ms: number;
}

export interface TxnRun {
  system: string;
  sizes: TxnSizeFigures[];
}

export async function runTxn(server: ServerHandle): Promise<TxnRun> {
  const conn = new H2Conn(server.endpoint);
  const txn = codec("KV", "Txn");
  try {
    const sizes: TxnSizeFigures[] = [];
    for (const n of TXN_SIZES) {
      const keys = Array.from({ length: n }, (_, i) => Buffer.from(`bench-txn/${n}/${i}`));
      const ms: number[] = [];
      for (let round = 0; round < TXN_WARMUP_ROUNDS + TXN_ROUNDS; round++) {
        const request = txn.requestSerialize({ compare: [], success: keys.map((key) => ({ request_put: { key, value: Buffer.alloc(VALUE_BYTES, round) } })), failure: [] });
        const started = now();
        const r = txn.responseDeserialize(await conn.unary("/etcdserverpb.KV/Txn", request));
        if (!r.succeeded) throw new Error(`${server.system}: a Txn of ${n} puts did not succeed`);
        if (round >= TXN_WARMUP_ROUNDS) ms.push(now() - started);
      }
      const median = (xs: number[]) => percentile(Float64Array.from(xs).sort(), 50);
      sizes.push({
        keys: n, rounds: ms.length, p50Ms: median(ms), p99Ms: percentile(Float64Array.from(ms).sort(), 99),
        firstP50Ms: median(ms.slice(0, 50)), lastP50Ms: median(ms.slice(-50)),
      });
    }
    return { system: server.system, sizes };
  } finally {
    conn.close();
  }
}
