/**
 * Jest's global teardown: names what is still open in the test process once
 * every suite has finished (a client's reconnect timer, a socket, a child
 * process), so that a leak shows in the log. The run itself ends with
 * `forceExit` (package.json): one clean-clone run of three (session 13) sat
 * after all its tests had passed, held open by something that a rerun did
 * not reproduce; jest's exit code still comes from the tests' results.
 */
/** Handles that are closing (a server child that has just exited) get this long to go first. */
const SETTLE_MS = 500;

module.exports = async () => {
  await new Promise((resolve) => setTimeout(resolve, SETTLE_MS));
  const stdio = (h) => h === process.stdin || h === process.stdout || h === process.stderr || (h._handle?.fd !== undefined && h._handle.fd >= 0 && h._handle.fd <= 2);
  const handles = process._getActiveHandles().filter((h) => !stdio(h));
  if (handles.length === 0) return;
  const describe = (h) => {
    const name = h.constructor?.name ?? typeof h;
    if (name === "Socket") return h.remoteAddress ? `Socket to ${h.remoteAddress}:${h.remotePort} (local port ${h.localPort})` : `Socket (${h._handle?.constructor?.name ?? "closed"}, fd ${h._handle?.fd ?? "?"})`;
    if (name === "ChildProcess") return `ChildProcess pid ${h.pid}: ${(h.spawnargs ?? []).slice(0, 4).join(" ")}`;
    if (name === "Timeout") return `Timeout ${h._idleTimeout} ms: ${String(h._onTimeout).replace(/\s+/g, " ").slice(0, 100)}`;
    return name;
  };
  process.stderr.write(`global teardown: ${handles.length} handle(s) still open after the last suite:\n${handles.map((h) => `  - ${describe(h)}`).join("\n")}\n`);
};
