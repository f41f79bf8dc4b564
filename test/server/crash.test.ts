/**
 * Crash safety: concurrent writers, SIGKILL mid-load, several rounds on one
 * data directory. After every restart each acknowledged write is there with
 * its value, and the revision is not lower than any acknowledged one.
 * Seeded: the seed is printed, and MERGEKV_SEED reruns a failure.
 */
import { Etcd3 } from "etcd3";
import { startServer, tempDir, RunningServer } from "../helpers/server";

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

interface Acked {
  /** key -> value of every acknowledged put of a unique key */
  unique: Map<string, string>;
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
        const res = i % 2 === 0
          ? await client.put(key).value(value).exec()
          : await client.put(`counter/w${w}`).value(String(round * 1_000_000 + i)).exec();
        const rev = Number(res.header.revision);
        if (i % 2 === 0) acked.unique.set(key, value);
        else acked.counters.set(w, Math.max(acked.counters.get(w) ?? 0, round * 1_000_000 + i));
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
    const counters = await client.getAll().prefix("counter/").strings();
    for (const [w, n] of acked.counters) expect(Number(counters[`counter/w${w}`])).toBeGreaterThanOrEqual(n);
    const status = await client.maintenance.status();
    expect(Number(status.header.revision)).toBeGreaterThanOrEqual(acked.maxRevision);
  } finally {
    client.close();
  }
}

test(`acknowledged writes survive SIGKILL, ${ROUNDS} rounds on one data dir (seed ${seed})`, async () => {
  const random = rng(seed);
  const dataDir = await tempDir("mergekv-crash-");
  const acked: Acked = { unique: new Map(), counters: new Map(), maxRevision: 0 };
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
  } finally {
    expect(await last.stop()).toBe(0);
  }
  console.log(`crash test: ${acked.unique.size} acknowledged unique keys, max revision ${acked.maxRevision}`);
}, 240_000);
