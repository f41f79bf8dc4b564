/**
 * etcd's auto-compaction flags on a real server: with a periodic retention
 * of 2 s, the history older than that is compacted away on its own, the
 * current values stay, and the compaction survives a restart. A bad flag
 * stops the server before it opens anything, with etcd's message.
 */
import { spawnSync } from "node:child_process";
import * as path from "node:path";
import { promises as fs } from "node:fs";
import { Etcd3 } from "etcd3";
import { startServer } from "../helpers/server";

const CLI = path.join(__dirname, "..", "..", "bin", "mergekv.js");
const ARGS = ["--auto-compaction-mode", "periodic", "--auto-compaction-retention", "2s"];
const COMPACTED = /required revision has been compacted/;

test("periodic, 2 s: revisions older than the retention are compacted without a client asking; values stay", async () => {
  let server = await startServer({ args: ARGS });
  let client = new Etcd3({ hosts: `http://${server.endpoint}` });
  try {
    const first = Number((await client.put("auto/k").value("1").exec()).header.revision);
    await client.put("auto/k").value("2");
    expect(await client.get("auto/k").revision(String(first)).string()).toBe("1");
    const deadline = Date.now() + 15_000;
    let error: Error | undefined;
    while (!error && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 250));
      error = await client.get("auto/k").revision(String(first)).string().then(() => undefined, (e: Error) => e);
    }
    expect(error?.message).toMatch(COMPACTED);
    expect(await client.get("auto/k").string()).toBe("2");
    expect(server.output()).toMatch(/auto-compaction \(periodic\): compacted to revision \d+/);

    client.close();
    expect(await server.stop()).toBe(0);
    server = await startServer({ dataDir: server.dataDir, port: server.port, args: ARGS });
    client = new Etcd3({ hosts: `http://${server.endpoint}` });
    await expect(client.get("auto/k").revision(String(first)).string()).rejects.toThrow(COMPACTED);
    expect(await client.get("auto/k").string()).toBe("2");
  } finally {
    client.close();
    await server.stop();
    await fs.rm(server.dataDir, { recursive: true, force: true });
  }
});

test("a bad --auto-compaction-mode or retention is refused with exit code 2 and etcd's message", () => {
  const run = (...args: string[]) => spawnSync(process.execPath, [CLI, "serve", "--data-dir", "/nonexistent/never-made", ...args], { encoding: "utf8" });
  const mode = run("--auto-compaction-mode", "hourly", "--auto-compaction-retention", "1");
  expect([mode.status, mode.stderr.split("\n")[0]]).toEqual([2, 'mergekv: unknown auto-compaction-mode "hourly"']);
  const retention = run("--auto-compaction-mode", "revision", "--auto-compaction-retention", "5m");
  expect([retention.status, retention.stderr.split("\n")[0]]).toEqual([2, 'mergekv: --auto-compaction-retention must be a whole number of revisions in revision mode, got "5m"']);
});
