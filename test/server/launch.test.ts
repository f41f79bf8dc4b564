/**
 * How the server is launched: bin/mergekv.js's shebang gives node the
 * young-generation flag the frontends need (REDESIGN.md, "Threads and
 * memory"); started without it, the server works and says what it lacks.
 */
import { readFileSync } from "node:fs";
import { startServer } from "../helpers/server";
import { SERVER_NODE_FLAGS } from "../../src/node-flags";

const WARNING = "WARNING: node was started without --min-semi-space-size=8";

test("bin/mergekv.js run as a program starts node with the server's flags, and no warning", async () => {
  const server = await startServer({ direct: true });
  try {
    const argv = readFileSync(`/proc/${server.child.pid}/cmdline`, "utf8").split("\0");
    for (const flag of SERVER_NODE_FLAGS) expect(argv).toContain(flag);
    expect(server.output()).not.toContain(WARNING);
    expect(server.output()).not.toContain("cannot be grown ahead"); // src/backend/automerge.ts reached Automerge's instance
  } finally {
    await server.stop();
  }
}, 60_000);

test("started by a bare `node bin/mergekv.js`, the server serves and warns about the missing flag", async () => {
  const server = await startServer({ nodeFlags: [] });
  try {
    const deadline = Date.now() + 10_000;
    while (!server.output().includes(WARNING) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(server.output()).toContain(WARNING);
  } finally {
    await server.stop();
  }
}, 60_000);
