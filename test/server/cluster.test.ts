/**
 * Cluster membership through etcdctl: add, update, remove, the errors, and
 * persistence across a restart; move-leader to another member; the member
 * name, data directory and URL given by ETCD_* environment variables.
 */
import { startServer } from "../helpers/server";
import { run } from "../helpers/etcdctl";

const ctl = (endpoint: string, ...args: string[]) => run("etcdctl", ["--endpoints", endpoint, ...args]);

test("member add, update, remove are persisted; bad requests get etcd's errors", async () => {
  const server = await startServer({ args: ["--name", "first"] });
  const peer = "http://127.0.0.2:2380"; // a peer URL is data here: nothing connects to it
  let restarted = null as Awaited<ReturnType<typeof startServer>> | null;
  try {
    const added = await ctl(server.endpoint, "member", "add", "second", `--peer-urls=${peer}`);
    expect(added.stdout).toMatch(/Member\s+[0-9a-f]+ added to cluster/); // etcdctl pads ids to 16 digits with spaces
    const id = /Member\s+([0-9a-f]+) added/.exec(added.stdout)![1];
    const list = (await ctl(server.endpoint, "member", "list")).stdout;
    expect(list).toContain(`${id}, unstarted, , ${peer}`);
    expect(list).toMatch(/started, first, , http:\/\/127\.0\.0\.1:\d+, false/);

    const duplicate = await ctl(server.endpoint, "member", "add", "third", `--peer-urls=${peer}`);
    expect(duplicate.stderr).toContain("etcdserver: Peer URLs already exists");
    // Every member takes writes: there is no leadership to hand to another one.
    const move = await ctl(server.endpoint, "move-leader", id);
    expect([move.code, move.stderr]).toEqual([1, expect.stringContaining("Error: rpc error: code = FailedPrecondition desc = mergekv: every member takes writes; there is no leadership to move\n")]);
    const missing = await ctl(server.endpoint, "member", "remove", "abcdef");
    expect(missing.stderr).toContain("etcdserver: member not found");

    const moved = "http://127.0.0.3:2380";
    expect((await ctl(server.endpoint, "member", "update", id, `--peer-urls=${moved}`)).stdout).toMatch(new RegExp(`Member\\s+${id} updated`));
    expect(await server.stop()).toBe(0);

    restarted = await startServer({ dataDir: server.dataDir, args: ["--name", "first"] });
    const after = (await ctl(restarted.endpoint, "member", "list")).stdout;
    expect(after).toContain(`${id}, unstarted, , ${moved}`);
    expect((await ctl(restarted.endpoint, "member", "remove", id)).stdout).toMatch(new RegExp(`Member\\s+${id} removed`));
    expect((await ctl(restarted.endpoint, "member", "list")).stdout).not.toContain(id);
  } finally {
    await server.stop();
    await restarted?.stop();
  }
}, 60_000);

test("configured by ETCD_* environment variables, as etcd images are: data directory, client URL, name; others reported", async () => {
  const server = await startServer({ viaEnvironment: true, env: { ETCD_NAME: "from-env", ETCD_INITIAL_CLUSTER: "from-env=http://127.0.0.1:2380" } });
  try {
    const list = (await ctl(server.endpoint, "member", "list")).stdout;
    expect(list).toMatch(new RegExp(`, started, from-env, , http://${server.endpoint}, false\\n$`));
    expect(server.output()).toContain(`recognized and used environment variable ETCD_DATA_DIR=${server.dataDir}`);
    expect(server.output()).toContain("unrecognized environment variable ETCD_INITIAL_CLUSTER=from-env=http://127.0.0.1:2380");
    expect((await ctl(server.endpoint, "put", "k", "v")).stdout).toBe("OK\n");
  } finally {
    await server.stop();
  }
  const again = await startServer({ dataDir: server.dataDir }); // the same data, now by flags
  try {
    expect((await ctl(again.endpoint, "get", "k", "--print-value-only")).stdout).toBe("v\n");
  } finally {
    await again.stop();
  }
}, 60_000);
