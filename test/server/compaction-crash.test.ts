/**
 * etcd's recorded bug "the revision going down after a crash during
 * compaction": SIGKILL while Compact and storage compaction run under
 * writes; after restart the revision is not below any acknowledged one, the
 * compact revision holds, and acknowledged writes are there. Seeded.
 */
import { Etcd3 } from "etcd3";
import { startServer, tempDir } from "../helpers/server";
import { run } from "../helpers/etcdctl";

const seed = Number(process.env.MERGEKV_SEED ?? Date.now() % 1_000_000);
console.log(`compaction crash seed ${seed} (rerun with MERGEKV_SEED=${seed})`);

test(`SIGKILL during compaction never lowers the revision (seed ${seed})`, async () => {
  const dataDir = await tempDir("mergekv-compact-crash-");
  let maxAcked = 0;
  let compacted = 0;
  const acked = new Map<string, string>();
  for (let round = 0; round < 3; round++) {
    const server = await startServer({ dataDir, args: ["--snapshot-count", "200"] });
    const client = new Etcd3({ hosts: `http://${server.endpoint}` });
    const status = await client.maintenance.status();
    expect(Number(status.header.revision)).toBeGreaterThanOrEqual(maxAcked);
    if (compacted > 0) {
      const below = await run("etcdctl", ["--endpoints", server.endpoint, "get", "k", "--rev", String(compacted - 1)]);
      expect(below.stderr).toContain("required revision has been compacted");
    }
    await expectAcked(client, acked);
    let stop = false;
    const writer = (async () => {
      for (let i = 0; !stop && i < 50_000; i++) {
        try {
          const res = await client.put(`r${round}/k${i}`).value(`v${i}`).exec();
          acked.set(`r${round}/k${i}`, `v${i}`);
          maxAcked = Math.max(maxAcked, Number(res.header.revision));
        } catch {
          return;
        }
      }
    })();
    await new Promise((r) => setTimeout(r, 300 + ((seed * (round + 1)) % 500)));
    const rev = maxAcked;
    const compaction = client.kv.compact({ revision: String(rev), physical: true }).then(() => { compacted = Math.max(compacted, rev); }, () => undefined);
    const defrag = run("etcdctl", ["--endpoints", server.endpoint, "defrag"]);
    await new Promise((r) => setTimeout(r, 50 + ((seed * 7 * (round + 1)) % 200)));
    await server.kill("SIGKILL");
    stop = true;
    await Promise.all([writer, compaction, defrag]);
    client.close();
  }
  const last = await startServer({ dataDir });
  const client = new Etcd3({ hosts: `http://${last.endpoint}` });
  try {
    expect(Number((await client.maintenance.status()).header.revision)).toBeGreaterThanOrEqual(maxAcked);
    await expectAcked(client, acked);
  } finally {
    client.close();
    await last.stop();
  }
}, 180_000);

async function expectAcked(client: Etcd3, acked: Map<string, string>): Promise<void> {
  const all = await client.getAll().prefix("r").strings();
  const missing = [...acked].filter(([k, v]) => all[k] !== v);
  expect(missing.slice(0, 5)).toEqual([]);
}
