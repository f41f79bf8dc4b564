/**
 * `etcdctl snapshot save` against mergekv, then `mergekv snapshot restore`:
 * the restored server has the same keys, values and revisions.
 */
import * as path from "node:path";
import { Etcd3 } from "etcd3";
import { startServer, tempDir } from "../helpers/server";
import { run } from "../helpers/etcdctl";

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
