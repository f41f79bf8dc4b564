/**
 * Storage compaction, online (Maintenance.Defragment) and offline
 * (`mergekv compact --data-dir`): afterwards the covered change records are
 * gone, state and revisions are unchanged, and a restart works.
 */
import * as path from "node:path";
import { Etcd3 } from "etcd3";
import { startServer, RunningServer } from "../helpers/server";
import { run } from "../helpers/etcdctl";
import { LevelStore } from "../../src/persist/level-store";
import { Prefix, prefixBounds } from "../../src/persist/encoding";

const CLI = path.join(__dirname, "..", "..", "bin", "mergekv.js");

interface State { revision: number; kvs: Record<string, { value: string; create: string; mod: string; version: string }> }

async function readState(server: RunningServer): Promise<State> {
  const client = new Etcd3({ hosts: `http://${server.endpoint}` });
  try {
    const res = await client.getAll().prefix("").exec();
    const kvs: State["kvs"] = {};
    for (const kv of res.kvs) kvs[kv.key.toString()] = { value: kv.value.toString(), create: kv.create_revision, mod: kv.mod_revision, version: kv.version };
    return { revision: Number(res.header.revision), kvs };
  } finally {
    client.close();
  }
}

async function countRecords(dataDir: string): Promise<number> {
  const store = new LevelStore(dataDir);
  await store.open();
  try {
    let n = 0;
    for (const prefix of [Prefix.Change, Prefix.Merge]) for await (const _ of store.entries(prefixBounds(prefix))) n++;
    return n;
  } finally {
    await store.close();
  }
}

async function writeLoad(server: RunningServer, keys: number): Promise<void> {
  const client = new Etcd3({ hosts: `http://${server.endpoint}` });
  try {
    for (let round = 0; round < 3; round++) {
      await Promise.all(Array.from({ length: keys }, (_, i) => client.put(`key/${i}`).value(`v${round}-${i}`).exec()));
    }
    await client.delete().prefix("key/1").exec(); // key/1, key/10..19, key/100..
  } finally {
    client.close();
  }
}

test("online compaction (etcdctl defrag) deletes covered records and keeps state", async () => {
  const server = await startServer({ args: ["--snapshot-count", "1000000"] });
  const dataDir = server.dataDir;
  try {
    await writeLoad(server, 300);
    const before = await readState(server);
    expect(Object.keys(before.kvs).length).toBeGreaterThan(100);
    const defrag = await run("etcdctl", ["--endpoints", server.endpoint, "defrag"]);
    expect(defrag.stderr + defrag.stdout).toContain("Finished defragmenting");
    expect(await readState(server)).toEqual(before);
    expect(server.output()).toMatch(/storage compaction: \d+ -> 0 change records/);
    expect(await server.stop()).toBe(0);
    expect(await countRecords(dataDir)).toBe(0);
    const again = await startServer({ dataDir, args: ["--snapshot-count", "1000000"] });
    try {
      expect(await readState(again)).toEqual(before);
      // Writes continue from the same revision.
      const client = new Etcd3({ hosts: `http://${again.endpoint}` });
      const put = await client.put("after").value("compaction").exec();
      client.close();
      expect(Number(put.header.revision)).toBe(before.revision + 1);
    } finally {
      await again.stop();
    }
  } finally {
    await server.stop();
  }
}, 120_000);

test("offline compaction (mergekv compact --data-dir) reports before/after and keeps state", async () => {
  const server = await startServer({ args: ["--snapshot-count", "1000000"] });
  await writeLoad(server, 200);
  const before = await readState(server);
  expect(await server.stop()).toBe(0);
  const recordsBefore = await countRecords(server.dataDir);
  expect(recordsBefore).toBeGreaterThan(600);
  const res = await run(process.execPath, [CLI, "compact", "--data-dir", server.dataDir]);
  expect(res.code).toBe(0);
  expect(res.stdout).toContain(`change records: ${recordsBefore} -> 0`);
  expect(res.stdout).toMatch(/bytes on disk: +[\d.]+ MiB -> [\d.]+ MiB/);
  expect(res.stdout).toMatch(/compaction done in \d+ ms/);
  expect(await countRecords(server.dataDir)).toBe(0);
  const again = await startServer({ dataDir: server.dataDir });
  try {
    expect(await readState(again)).toEqual(before);
  } finally {
    await again.stop();
  }
}, 120_000);

test("automatic snapshots every --snapshot-count records keep the log short while writes flow", async () => {
  const server = await startServer({ args: ["--snapshot-count", "100"] });
  try {
    await writeLoad(server, 150);
    const before = await readState(server);
    expect(server.output()).toMatch(/snapshot at revision \d+: \d+ records covered/);
    expect(await server.stop()).toBe(0);
    expect(await countRecords(server.dataDir)).toBeLessThan(300); // 450+ writes were made
    const again = await startServer({ dataDir: server.dataDir });
    try {
      expect(await readState(again)).toEqual(before);
    } finally {
      await again.stop();
    }
  } finally {
    await server.stop();
  }
}, 120_000);
