/**
 * Internal replication and routing, observed from a client: a write is
 * visible to a serializable read on every frontend as soon as it returns,
 * with --internal-replication equal to --frontends and with 1; routing by
 * key makes compare-and-swap on one key exclusive across frontends; and
 * `mergekv replication` reads and changes the factor of a running server.
 */
import * as path from "node:path";
import { Etcd3 } from "etcd3";
import { freePort, RunningServer, startServer, tempDir } from "../helpers/server";
import { CmdResult, run } from "../helpers/etcdctl";
import { makeCerts } from "../helpers/tls";
import { Wire } from "../../src/api/convert";

const CLI = path.join(__dirname, "..", "..", "bin", "mergekv.js");

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

/** `mergekv replication` (and the other online commands) against a server, as an operator runs them. */
async function mergekv(args: string[]): Promise<CmdResult> {
  return run(process.execPath, [CLI, ...args]);
}

async function replicationOf(server: RunningServer, extra: string[] = []): Promise<Wire> {
  const r = await mergekv(["replication", "--endpoints", server.endpoint, "-w", "json", ...extra]);
  expect(r).toMatchObject({ code: 0, stderr: "" });
  return JSON.parse(r.stdout) as Wire;
}

test("mergekv replication: shows the factors and what each frontend applied; --internal changes it until the server stops; bad values refused", async () => {
  const server = await startServer({ args: ["--frontends", "3"] });
  const client = new Etcd3({ hosts: `http://${server.endpoint}` });
  let restarted: RunningServer | undefined;
  try {
    expect(await replicationOf(server)).toMatchObject({ internal: 1, frontends: 3, external: 0, peers: 0 });
    expect((await replicationOf(server)).applied).toHaveLength(3);
    const text = await mergekv(["replication", "--endpoints", `http://${server.endpoint}`]);
    expect(text.stdout).toContain("internal replication: 1 of 3 frontends must apply a write before it is answered");

    expect(await replicationOf(server, ["--internal", "3"])).toMatchObject({ internal: 3, frontends: 3 });
    // With 3 of 3, a put is answered only once every frontend has said it applied it (with 1, the two
    // frontends that do not own the key hear of it only with their next request, and say so later).
    for (let i = 0; i < 10; i++) {
      const rev = Number((await client.put("replicated").value(String(i)).exec()).header.revision);
      const applied = (await replicationOf(server)).applied as Wire[];
      expect(applied.map((f) => Number(f.revision) >= rev)).toEqual([true, true, true]);
    }

    const tooMany = await mergekv(["replication", "--endpoints", server.endpoint, "--internal", "4"]);
    expect(tooMany.code).toBe(1);
    expect(tooMany.stderr).toContain("internal replication must be between 1 and the number of frontends (3), got 4");
    const external = await mergekv(["replication", "--endpoints", server.endpoint, "--external", "1"]);
    expect(external.code).toBe(1);
    expect(external.stderr).toContain("external replication 1 needs 1 peer servers to hold each write; this server has 0");
    const zero = await mergekv(["replication", "--endpoints", server.endpoint, "--internal", "0"]);
    expect(zero.code).toBe(2);
    expect(zero.stderr).toContain('--internal must be a positive integer, got "0"');
    expect(await replicationOf(server)).toMatchObject({ internal: 3 }); // the refusals changed nothing
    expect(await client.get("replicated").string()).toBe("9");

    // Back down to 1 and writes still go through; a restart takes --internal-replication again.
    expect(await replicationOf(server, ["--internal", "1"])).toMatchObject({ internal: 1 });
    await client.put("replicated").value("after").exec();
    client.close();
    await server.stop();
    restarted = await startServer({ dataDir: server.dataDir, args: ["--frontends", "3", "--internal-replication", "2"] });
    expect(await replicationOf(restarted)).toMatchObject({ internal: 2, frontends: 3 });
  } finally {
    client.close();
    await server.stop();
    await restarted?.stop();
  }
}, 60_000);

test("the online commands speak TLS and auth as etcdctl does: Status is public, setting and compacting need root", async () => {
  const certs = await makeCerts(await tempDir("mergekv-tls-"));
  const port = await freePort();
  const server = await startServer({ port, args: ["--frontends", "2", "--listen-client-urls", `https://127.0.0.1:${port}`, "--cert-file", certs.serverCert, "--key-file", certs.serverKey] });
  const tls = ["--endpoints", `https://127.0.0.1:${port}`, "--cacert", certs.ca];
  try {
    for (const args of [["user", "add", "root:rootpw"], ["role", "add", "root"], ["user", "grant-role", "root", "root"], ["user", "add", "alice:alicepw"], ["auth", "enable"]]) {
      expect(await run("etcdctl", [...tls, ...args])).toMatchObject({ code: 0 });
    }
    const shown = await mergekv(["replication", ...tls, "-w", "json"]);
    expect(shown.code).toBe(0);
    expect(JSON.parse(shown.stdout)).toMatchObject({ internal: 1, frontends: 2 });

    const anonymous = await mergekv(["replication", ...tls, "--internal", "2"]);
    expect(anonymous.code).toBe(1);
    expect(anonymous.stderr).toContain("etcdserver: user name is empty");
    const notRoot = await mergekv(["replication", ...tls, "--internal", "2", "--user", "alice", "--password", "alicepw"]);
    expect(notRoot.code).toBe(1);
    expect(notRoot.stderr).toContain("etcdserver: permission denied");
    const wrongPassword = await mergekv(["replication", ...tls, "--internal", "2", "--user", "root:nope"]);
    expect(wrongPassword.code).toBe(1);
    expect(wrongPassword.stderr).toContain("etcdserver: authentication failed, invalid user ID or password");
    const root = await mergekv(["replication", ...tls, "--internal", "2", "--user", "root:rootpw", "-w", "json"]);
    expect(root.code).toBe(0);
    expect(JSON.parse(root.stdout)).toMatchObject({ internal: 2 });

    expect((await mergekv(["compact", ...tls])).stderr).toContain("etcdserver: user name is empty");
    const compacted = await mergekv(["compact", ...tls, "--user", "root:rootpw"]);
    expect(compacted.code).toBe(0);
    expect(compacted.stdout).toMatch(new RegExp(`compacted 127.0.0.1:${port} in \\d+ ms: data directory [\\d.]+ MiB -> [\\d.]+ MiB`));
    // Without the CA the server's certificate is not trusted.
    const untrusted = await mergekv(["replication", "--endpoints", `https://127.0.0.1:${port}`]);
    expect(untrusted.code).toBe(1);
  } finally {
    await server.stop();
  }
}, 60_000);

test("the factor changed back and forth under concurrent writes: every write is answered, none lost, reads on every frontend see each answered write", async () => {
  const server = await startServer({ args: ["--frontends", "3"] });
  const clients = Array.from({ length: 4 }, () => new Etcd3({ hosts: `http://${server.endpoint}` }));
  try {
    let writing = true;
    const writers = clients.map(async (c, w) => {
      let n = 0;
      while (writing) {
        await c.put(`w${w}/${n % 50}`).value(String(n)).exec();
        // Reads go round-robin over the frontends: whichever serves it has the write, whatever the factor.
        expect(await c.get(`w${w}/${n % 50}`).options({ serializable: true }).string()).toBe(String(n));
        n++;
      }
      return n;
    });
    for (let i = 0; i < 12; i++) {
      const k = [3, 1, 2][i % 3];
      expect(await replicationOf(server, ["--internal", String(k)])).toMatchObject({ internal: k });
    }
    writing = false;
    const written = await Promise.all(writers);
    for (const [w, n] of written.entries()) {
      expect(n).toBeGreaterThan(0);
      const last = n - 1;
      expect(await clients[0].get(`w${w}/${last % 50}`).string()).toBe(String(last));
    }
  } finally {
    for (const c of clients) c.close();
    await server.stop();
  }
}, 90_000);
