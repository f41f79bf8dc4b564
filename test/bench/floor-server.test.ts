/**
 * The floor server (bench/floor-server.ts) at each stage, driven by the
 * etcd3 client: its figures mean something only if every stage does the
 * work it claims (the events reach the watchers, the leases' keys go away,
 * and at `durable` the Automerge changes are on disk and make the state).
 */
import * as path from "node:path";
import { ClassicLevel } from "classic-level";
import { Etcd3 } from "etcd3";
import { A } from "../../src/backend/automerge";
import { Cleanup } from "../../bench/processes";
import { startFloor } from "../../bench/servers";
import { FLOOR_STAGES, FloorStage } from "../../bench/floor-server";

jest.setTimeout(60_000);

const cleanup = new Cleanup();
afterAll(() => cleanup.all());

interface Seen {
  key: string;
  value: string;
  modRevision: number;
}

async function drive(endpoint: string): Promise<{ seen: Seen[]; leaseKey: string }> {
  const client = new Etcd3({ hosts: `http://${endpoint}` });
  try {
    const seen: Seen[] = [];
    const watcher = await client.watch().prefix("floor/").create();
    watcher.on("put", (kv) => seen.push({ key: kv.key.toString(), value: kv.value.toString(), modRevision: Number(kv.mod_revision) }));
    for (let i = 0; i < 5; i++) await client.put(`floor/${i}`).value(`v${i}`);
    const lease = client.lease(60, { autoKeepAlive: false });
    const id = await lease.grant();
    expect(Number.parseInt(id, 10)).toBeGreaterThan(0);
    await lease.put("floor/leased").value("held");
    await lease.revoke();
    for (let t = 0; seen.length < 6 && t < 100; t++) await new Promise((r) => setTimeout(r, 20));
    await watcher.cancel();
    return { seen, leaseKey: "floor/leased" };
  } finally {
    client.close();
  }
}

/** The document the stored change records make, as key -> value. */
async function storedState(dir: string): Promise<{ changes: number; leaseRecords: number; state: Map<string, string> }> {
  const db = new ClassicLevel<Buffer, Uint8Array>(path.join(dir, "floor"), { keyEncoding: "buffer", valueEncoding: "view" });
  const changes: Uint8Array[] = [];
  let leaseRecords = 0;
  try {
    for await (const [key, value] of db.iterator()) {
      if (key[0] === 0x63) changes.push(value);
      else if (key.toString().startsWith("L|")) leaseRecords++;
    }
  } finally {
    await db.close();
  }
  const doc = A.getBackend(A.init());
  doc.applyChanges(changes);
  const state = new Map<string, string>();
  for (const key of doc.keys("_root")) state.set(key, Buffer.from(doc.get("_root", key) as Uint8Array).toString());
  doc.free();
  return { changes: changes.length, leaseRecords, state };
}

describe.each(FLOOR_STAGES.map((s) => [s]))("floor server at %s", (stage: FloorStage) => {
  it("delivers every put to the watcher in revision order and serves the lease calls", async () => {
    const floor = await startFloor(cleanup, stage);
    let seen: Seen[];
    try {
      ({ seen } = await drive(floor.endpoint));
    } finally {
      expect(await floor.stop()).toBeGreaterThanOrEqual(0);
    }
    expect(seen.map((s) => `${s.key}=${s.value}`)).toEqual([0, 1, 2, 3, 4].map((i) => `floor/${i}=v${i}`).concat("floor/leased=held"));
    for (let i = 1; i < seen.length; i++) expect(seen[i].modRevision).toBeGreaterThan(seen[i - 1].modRevision);
    if (stage !== "durable") return;
    // Durable: one change per put and one for the revoke's deletion, made by the workers in Automerge.
    const stored = await storedState(floor.dataDir);
    expect(stored.changes).toBe(7);
    expect(stored.leaseRecords).toBe(0); // granted, then deleted with the revoke
    expect([...stored.state.entries()].sort()).toEqual([0, 1, 2, 3, 4].map((i) => [`floor/${i}`, `v${i}`]));
  });
});
