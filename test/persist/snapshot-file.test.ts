import { promises as fs } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { LevelStore } from "../../src/persist/level-store";
import { MemoryStore } from "../../src/persist/memory-store";
import { restoreSnapshot, snapshotChunks, snapshotEntries } from "../../src/persist/snapshot-file";
import { MergekvError } from "../../src/errors";
import { Store } from "../../src/persist/store";

async function storeWith(n: number): Promise<MemoryStore> {
  const s = new MemoryStore();
  await s.open();
  await s.batch(Array.from({ length: n }, (_, i) => ({ type: "put" as const, key: Buffer.from(`k${String(i).padStart(6, "0")}`), value: Buffer.alloc(i % 700, i % 256) })), true);
  return s;
}

async function fileOf(s: Store): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of snapshotChunks(s)) chunks.push(c);
  return Buffer.concat(chunks);
}

test("a snapshot restores every entry, byte for byte, and is sized as etcdctl requires (size % 512 == 32)", async () => {
  const source = await storeWith(3000);
  const file = await fileOf(source);
  expect(file.length % 512).toBe(32);
  const target = new MemoryStore();
  await target.open();
  expect(await restoreSnapshot(file, target)).toBe(3000);
  const all = { gte: Buffer.of(0), lt: Buffer.of(0xff) };
  const a: string[] = [], b: string[] = [];
  for await (const [k, v] of source.entries(all)) a.push(k.toString("hex") + ":" + v.toString("hex"));
  for await (const [k, v] of target.entries(all)) b.push(k.toString("hex") + ":" + v.toString("hex"));
  expect(b).toEqual(a);
});

test("damaged, truncated or foreign files are Corrupt; a non-empty target is refused; nothing is written", async () => {
  const file = await fileOf(await storeWith(50));
  const flipped = Buffer.from(file);
  flipped[100] ^= 1;
  for (const bad of [flipped, file.subarray(0, file.length - 512), Buffer.alloc(544)]) {
    expect(() => [...snapshotEntries(bad)]).toThrow(MergekvError);
  }
  const target = new MemoryStore();
  await target.open();
  await expect(restoreSnapshot(flipped, target)).rejects.toThrow(/sha256 mismatch/);
  let written = 0;
  for await (const _ of target.entries({ gte: Buffer.of(0), lt: Buffer.of(0xff) })) written++;
  expect(written).toBe(0);
  await restoreSnapshot(file, target);
  await expect(restoreSnapshot(file, target)).rejects.toThrow(/not empty/);
});

test("empty values read back from Level (zero-byte buffers without a backing store) keep the file's crc right", async () => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), "mergekv-snapfile-"));
  const source = new LevelStore(dir);
  await source.open();
  try {
    await source.batch([
      { type: "put", key: Buffer.from("a"), value: Buffer.from("before") },
      { type: "put", key: Buffer.from("b"), value: Buffer.alloc(0) },
      { type: "put", key: Buffer.from("c"), value: Buffer.from("after") },
    ], true);
    const target = new MemoryStore();
    await target.open();
    expect(await restoreSnapshot(await fileOf(source), target)).toBe(3);
    expect((await target.get(Buffer.from("b")))?.length).toBe(0);
  } finally {
    await source.close();
    await fs.rm(dir, { recursive: true, force: true });
  }
});
