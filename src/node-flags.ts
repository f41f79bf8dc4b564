/**
 * The flags node runs the server with. Node takes them only on its own
 * command line (not in NODE_OPTIONS, not per worker), so bin/mergekv.js's
 * shebang and `npm start` repeat them; the benchmark and the tests' servers
 * take them from here, and a server started without them warns.
 *
 * --min-semi-space-size=8: each isolate otherwise starts with 1 MiB
 * semi-spaces, and under writes to many keys V8 kept the frontends in
 * mark-compacts, a third of their time. REDESIGN.md ("Threads and memory")
 * has the measurements.
 */
export const SERVER_NODE_FLAGS: readonly string[] = ["--min-semi-space-size=8"];

/** The flags (by name: another value counts as given) node was started without. */
export function missingNodeFlags(execArgv: readonly string[]): string[] {
  const given = new Set(execArgv.map((a) => a.split("=")[0]));
  return SERVER_NODE_FLAGS.filter((f) => !given.has(f.split("=")[0]));
}
