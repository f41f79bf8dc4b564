/**
 * `etcdctl snapshot save` against mergekv, then `mergekv snapshot restore`:
 * the restored server has the same keys, values and revisions; and
 * `mergekv snapshot status`, etcdctl's command for a mergekv file.
 */
import * as path from "node:path";
import { promises as fs } from "node:fs";
import { Etcd3 } from "etcd3";
import { startServer, tempDir } from "../helpers/server";
import { run } from "../helpers/etcdctl";
import { siBytes } from "../../src/cli";

const CLI = path.join(__dirname, "..", "..", "bin", "mergekv.js");

test("snapshot save, restore into a new data directory, serve: same state and revision", async () => {
  const server = await startServer({ args: ["--snapshot-count", "50"] });
  const client = new Etcd3({ hosts: `http://${server.endpoint}` });
  const dir = await tempDir("mergekv-snap-");
  const file = path.join(dir, "backup.db");
  try {
    for (let i = 0; i < 200; i++) await client.put(`key/${i % 120}`).value(`value-${i}`).exec();
    await client.delete().key("key/7").exec();
    const before = await client.getAll().prefix("key/").exec();
    const saved = await run("etcdctl", ["--endpoints", server.endpoint, "snapshot", "save", file]);
    expect(saved.stdout + saved.stderr).toContain(`Snapshot saved at ${file}`);

    // status, in etcdctl's three forms
    const size = (await fs.stat(file)).size;
    const json = await run(process.execPath, [CLI, "snapshot", "status", file, "-w", "json"]);
    const status = JSON.parse(json.stdout);
    expect(status).toEqual({ hash: expect.any(Number), revision: Number(before.header.revision), totalKey: expect.any(Number), totalSize: size });
    expect(status.totalKey).toBeGreaterThan(120);
    const kb = siBytes(size);
    expect(kb).toMatch(/^\d+ kB$/);
    const simple = await run(process.execPath, [CLI, "snapshot", "status", file]);
    expect(simple.stdout).toBe(`${status.hash.toString(16)}, ${status.revision}, ${status.totalKey}, ${kb}\n`);
    const table = (await run(process.execPath, [CLI, "snapshot", "status", file, "--write-out", "table"])).stdout.split("\n");
    expect(table[1]).toMatch(/^\| +HASH +\| REVISION \| TOTAL KEYS \| TOTAL SIZE \|$/);
    expect(table[3]).toMatch(new RegExp(`^\\| +${status.hash.toString(16)} \\| +${status.revision} \\| +${status.totalKey} \\| +${kb} \\|$`));
    const damaged = path.join(dir, "damaged.db");
    const bytes = await fs.readFile(file);
    bytes[100] ^= 0xff;
    await fs.writeFile(damaged, bytes);
    const bad = await run(process.execPath, [CLI, "snapshot", "status", damaged]);
    expect([bad.code, bad.stdout, bad.stderr]).toEqual([1, "", "mergekv: snapshot sha256 mismatch: the file is damaged or truncated\n"]);
    const restoredDir = path.join(dir, "restored");
    const restored = await run(process.execPath, [CLI, "snapshot", "restore", file, "--data-dir", restoredDir]);
    expect(restored.code).toBe(0);
    expect(restored.stdout).toMatch(/restored \d+ entries/);
    const again = await run(process.execPath, [CLI, "snapshot", "restore", file, "--data-dir", restoredDir]);
    expect([again.code, again.stderr.includes("not empty")]).toEqual([2, true]);
    const copy = await startServer({ dataDir: restoredDir });
    const c2 = new Etcd3({ hosts: `http://${copy.endpoint}` });
    try {
      const after = await c2.getAll().prefix("key/").exec();
      expect(after.header.revision).toBe(before.header.revision);
      expect(after.kvs.map((kv) => [kv.key.toString(), kv.value.toString(), kv.mod_revision, kv.version]))
        .toEqual(before.kvs.map((kv) => [kv.key.toString(), kv.value.toString(), kv.mod_revision, kv.version]));
    } finally {
      c2.close();
      await copy.stop();
    }
  } finally {
    client.close();
    await server.stop();
  }
}, 60_000);

test("sizes as etcdctl prints them (go-humanize's SI bytes)", () => {
  // 20480 is what etcdctl printed for a fresh etcd's snapshot ("20 kB"); 21,500 and 123,456,789 round a half to even.
  expect([9, 10, 1500, 20480, 21_500, 999_999, 1_000_000, 123_456_789].map(siBytes)).toEqual(["9 B", "10 B", "1.5 kB", "20 kB", "22 kB", "1000 kB", "1.0 MB", "124 MB"]);
});
