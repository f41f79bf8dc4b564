/**
 * Crash safety: concurrent writers (puts, and multi-key Txns that also put
 * and then delete a key), SIGKILL mid-load, several rounds on one data
 * directory. After every restart each acknowledged write is there with its
 * value, a key a Txn put and deleted is not, and the revision is not lower
 * than any acknowledged one.
 * Seeded: the seed is printed, and MERGEKV_SEED reruns a failure.
 */
import { Etcd3 } from "etcd3";
import { startServer, tempDir, RunningServer } from "../helpers/server";
import { watchStream } from "../helpers/grpc";

const ROUNDS = 4;
const WRITERS = 16;
const seed = Number(process.env.MERGEKV_SEED ?? Date.now() % 1_000_000);
console.log(`crash test seed ${seed} (rerun with MERGEKV_SEED=${seed})`);

/** mulberry32: a small seeded PRNG. */
function rng(s: number): () => number {
  return () => {
    s = (s + 0x6d2b79f5) | 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A Txn's keys, in op order (not key order: a replay in key order would show). */
const TXN_KEYS = ["d", "b", "a", "c"];

interface Acked {
  /** key -> value of every acknowledged put of a unique key (a Txn's keys too) */
  unique: Map<string, string>;
  /** keys an acknowledged Txn put in one nested Txn and deleted in a later one: absent after every restart */
  gone: string[];
  /** writer -> highest acknowledged counter written to its overwritten key */
  counters: Map<number, number>;
  maxRevision: number;
}

/**
 * Runs WRITERS concurrent writers and SIGKILLs the server `killAfterMs` after
 * the round's first acknowledged write, so every kill lands mid-load however
 * long the server takes to warm up on a loaded machine.
 */
async function loadUntilKilled(server: RunningServer, round: number, killAfterMs: number, acked: Acked): Promise<number> {
  const clients = Array.from({ length: 4 }, () => new Etcd3({ hosts: `http://${server.endpoint}`, dialTimeout: 2000 }));
  let stop = false;
  let ackedThisRound = 0;
  let firstAck!: () => void;
  const firstAcked = new Promise<void>((resolve) => (firstAck = resolve));
  const writer = async (w: number) => {
    const client = clients[w % clients.length];
    for (let i = 0; !stop && i < 100_000; i++) {
      const key = `r${round}/w${w}/k${i}`;
      const value = `v-${round}-${w}-${i}-${"x".repeat(i % 50)}`;
      try {
        let res: { header: { revision: string } };
        if (i % 3 === 2) {
          // A Txn over keys in several buckets (borrowed documents, kept loans), one of them put by a
          // nested Txn and deleted by a later one (two writes of a key at one revision).
          const keys = TXN_KEYS.map((k) => `${key}/${k}`);
          const nested = (op: object) => ({ request_txn: { compare: [], success: [op], failure: [] } });
          res = await client.kv.txn({
            compare: [],
            success: [
              ...keys.map((k) => ({ request_put: { key: Buffer.from(k), value: Buffer.from(value) } })),
              nested({ request_put: { key: Buffer.from(`${key}/gone`), value: Buffer.from(value) } }),
              nested({ request_delete_range: { key: Buffer.from(`${key}/gone`) } }),
            ],
            failure: [],
          });
          for (const k of keys) acked.unique.set(k, value);
          acked.gone.push(`${key}/gone`);
        } else if (i % 3 === 0) {
          res = await client.put(key).value(value).exec();
          acked.unique.set(key, value);
        } else {
          res = await client.put(`counter/w${w}`).value(String(round * 1_000_000 + i)).exec();
          acked.counters.set(w, Math.max(acked.counters.get(w) ?? 0, round * 1_000_000 + i));
        }
        const rev = Number(res.header.revision);
        acked.maxRevision = Math.max(acked.maxRevision, rev);
        if (ackedThisRound++ === 0) firstAck();
      } catch {
        return; // the server was killed: this write was never acknowledged
      }
    }
  };
  const writers = Array.from({ length: WRITERS }, (_, w) => writer(w));
  let timer: NodeJS.Timeout | undefined;
  const noAck = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`round ${round}: no write acknowledged within 30 s\n${server.output()}`)), 30_000);
  });
  await Promise.race([firstAcked, noAck]).finally(() => clearTimeout(timer));
  await new Promise((r) => setTimeout(r, killAfterMs));
  await server.kill("SIGKILL");
  stop = true;
  await Promise.all(writers);
  for (const c of clients) c.close();
  return ackedThisRound;
}

async function verify(server: RunningServer, acked: Acked): Promise<void> {
  const client = new Etcd3({ hosts: `http://${server.endpoint}` });
  try {
    const all = await client.getAll().prefix("r").strings();
    const missing = [...acked.unique].filter(([k, v]) => all[k] !== v);
    expect(missing.slice(0, 5)).toEqual([]);
    expect(acked.gone.filter((k) => k in all).slice(0, 5)).toEqual([]);
    const counters = await client.getAll().prefix("counter/").strings();
    for (const [w, n] of acked.counters) expect(Number(counters[`counter/w${w}`])).toBeGreaterThanOrEqual(n);
    const status = await client.maintenance.status();
    expect(Number(status.header.revision)).toBeGreaterThanOrEqual(acked.maxRevision);
  } finally {
    client.close();
  }
}

/**
 * The history, replayed from the first revision after the crashes (records
 * and snapshots): each acknowledged Txn's events at its revision in op order,
 * its keys' puts (TXN_KEYS), then the put and the delete of the key it deleted.
 */
async function verifyTxnHistory(server: RunningServer, acked: Acked): Promise<void> {
  const client = new Etcd3({ hosts: `http://${server.endpoint}` });
  const upTo = Number((await client.put("r~end").value("").exec()).header.revision); // the replay ends with it
  client.close();
  const w = watchStream(server.endpoint);
  try {
    w.send({ create_request: { key: Buffer.from("r"), range_end: Buffer.from("s"), start_revision: "1" } });
    expect((await w.next()).created).toBe(true);
    const byRevision = new Map<string, string[]>();
    for (let last = 0; last < upTo; ) {
      for (const e of (await w.next()).events ?? []) {
        const rev = String(e.kv.mod_revision);
        byRevision.set(rev, [...(byRevision.get(rev) ?? []), `${e.type} ${e.kv.key}`]);
        last = Math.max(last, Number(rev));
      }
    }
    const txns = [...byRevision.values()].filter((events) => events.some((e) => e.endsWith("/gone")));
    const txnKeys = new Set(acked.gone.map((k) => k.slice(0, -"/gone".length)));
    expect(txns.length).toBeGreaterThanOrEqual(txnKeys.size); // every acknowledged one, and some that were not yet
    for (const events of txns) {
      const base = events[0].split(" ")[1].replace(/\/[^/]*$/, "");
      expect(events).toEqual([...TXN_KEYS.map((k) => `Put ${base}/${k}`), `Put ${base}/gone`, `Delete ${base}/gone`]);
    }
  } finally {
    w.close();
  }
}

test(`acknowledged writes survive SIGKILL, ${ROUNDS} rounds on one data dir (seed ${seed})`, async () => {
  const random = rng(seed);
  const dataDir = await tempDir("mergekv-crash-");
  const acked: Acked = { unique: new Map(), gone: [], counters: new Map(), maxRevision: 0 };
  // A small snapshot count so that kills also land during snapshots.
  const args = ["--snapshot-count", "500", "--frontends", "2"];
  for (let round = 0; round < ROUNDS; round++) {
    const server = await startServer({ dataDir, args });
    if (round > 0) await verify(server, acked);
    const killAfterMs = 100 + Math.floor(random() * 1500);
    const ackedThisRound = await loadUntilKilled(server, round, killAfterMs, acked);
    console.log(`round ${round}: killed ${killAfterMs} ms after the first ack, ${ackedThisRound} writes acknowledged`);
  }
  const last = await startServer({ dataDir, args });
  try {
    await verify(last, acked);
    await verifyTxnHistory(last, acked);
  } finally {
    expect(await last.stop()).toBe(0);
  }
  console.log(`crash test: ${acked.unique.size} acknowledged unique keys, max revision ${acked.maxRevision}`);
}, 240_000);
