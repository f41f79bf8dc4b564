/**
 * Internal replication and routing, observed from a client: a write is
 * visible to a serializable read on every frontend as soon as it returns,
 * with --internal-replication equal to --frontends and with 1; and routing by
 * key makes compare-and-swap on one key exclusive across frontends.
 */
import { Etcd3 } from "etcd3";
import { startServer } from "../helpers/server";

test.each([3, 1])("--internal-replication %i of 3: every serializable read right after a write sees it", async (k) => {
  // With K=1 the other frontends' entries are held until their next request, which takes them first.
  const server = await startServer({ args: ["--frontends", "3", "--internal-replication", String(k)] });
  const client = new Etcd3({ hosts: `http://${server.endpoint}` });
  try {
    // Reads go round-robin across the frontends, so 3 reads after each write hit all three.
    for (let i = 0; i < 150; i++) {
      await client.put("replicated").value(String(i)).exec();
      const seen = await Promise.all([0, 1, 2].map(() => client.get("replicated").options({ serializable: true }).string()));
      expect(seen).toEqual([String(i), String(i), String(i)]);
    }
  } finally {
    client.close();
    await server.stop();
  }
}, 60_000);

test("compare-and-swap on one key is exclusive: of many concurrent create-if-absent txns exactly one wins", async () => {
  const server = await startServer({ args: ["--frontends", "2"] });
  const clients = Array.from({ length: 4 }, () => new Etcd3({ hosts: `http://${server.endpoint}` }));
  try {
    for (let round = 0; round < 20; round++) {
      const key = `lock/${round}`;
      const attempts = Array.from({ length: 16 }, (_, i) =>
        clients[i % clients.length].if(key, "Create", "==", 0).then(clients[i % clients.length].put(key).value(`owner-${i}`)).commit());
      const results = await Promise.all(attempts);
      const winners = results.filter((r) => r.succeeded);
      expect(winners.length).toBe(1);
      const owner = await clients[0].get(key).string();
      expect(owner).toBe(`owner-${results.indexOf(winners[0])}`);
    }
    // Compare-and-swap on the mod revision: concurrent increments lose no update.
    await clients[0].put("counter").value("0").exec();
    const increment = async (c: Etcd3) => {
      for (let done = false; !done; ) {
        const res = await c.get("counter").exec();
        const kv = res.kvs[0];
        const next = String(Number(kv.value.toString()) + 1);
        done = (await c.if("counter", "Mod", "==", kv.mod_revision).then(c.put("counter").value(next)).commit()).succeeded;
      }
    };
    await Promise.all(Array.from({ length: 40 }, (_, i) => increment(clients[i % clients.length])));
    expect(await clients[0].get("counter").string()).toBe("40");
  } finally {
    for (const c of clients) c.close();
    await server.stop();
  }
}, 60_000);

test("writes that wait for the one before them on their frontend all finish: 200 concurrent prev_kv puts to one key form one chain", async () => {
  // Each put reads the key (prev_kv), so on its frontend it waits until the previous put's entry
  // comes back; entries reach a frontend at once only when it says it waits for them.
  const server = await startServer({ args: ["--frontends", "3"] });
  const clients = Array.from({ length: 4 }, () => new Etcd3({ hosts: `http://${server.endpoint}` }));
  try {
    await clients[0].put("chain").value("start").exec();
    const puts = Array.from({ length: 200 }, (_, i) => clients[i % clients.length].put("chain").value(`v${i}`).getPrevious());
    const prevs = (await Promise.all(puts)).map((kv) => kv?.value.toString());
    const last = await clients[0].get("chain").string();
    // Every value but the last was replaced exactly once, "start" first: one chain, no lost update.
    const replaced = [...prevs].sort();
    const expected = ["start", ...Array.from({ length: 200 }, (_, i) => `v${i}`).filter((v) => v !== last)].sort();
    expect(replaced).toEqual(expected);
  } finally {
    for (const c of clients) c.close();
    await server.stop();
  }
}, 60_000);
