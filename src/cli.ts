/**
 * The `mergekv` command: `serve` (what `npm start` runs), and the operator
 * commands `compact`, `replication` and `snapshot`. Flags follow etcd's and
 * etcdctl's names where they apply.
 */
import { parseArgs } from "node:util";
import { promises as fs } from "node:fs";
import { restoreSnapshot, snapshotStatus } from "./persist/snapshot-file";
import { DEFAULT_OPTIONS, MergekvServer, compactStorage, CompactionReport } from "./server";
import { intFlag, parseServeFlags } from "./serve-flags";
import { ADMIN_OPTIONS, AdminClient, AdminFlags } from "./admin-client";
import { Wire } from "./api/convert";
import { Backend } from "./backend/backend";
import { LevelStore } from "./persist/level-store";
import { MergekvError, isMergekvError } from "./errors";
import { missingNodeFlags } from "./node-flags";
import { canGrowAhead } from "./backend/automerge";

const USAGE = `Usage:
  mergekv serve [flags]          run a server (default: data in ./default.mergekv, clients on 127.0.0.1:2379)
  mergekv compact --data-dir DIR compact a stopped server's data directory
  mergekv compact --endpoints URL ask a running server to compact (online)
  mergekv replication --endpoints URL [--internal K] [--external N] [-w simple|json]
                                 show a running server's replication factors; set them (until it stops)
  mergekv snapshot restore FILE --data-dir DIR
                                 make a new data directory from a snapshot (etcdctl snapshot save)
  mergekv snapshot status FILE [-w simple|json|table]
                                 check a snapshot whole; its hash, revision, entries and size

online commands (compact --endpoints, replication), as etcdctl:
  --endpoints URL                   host:port or http(s)://host:port of a running server
  --cacert FILE                     CA to verify the server's certificate (TLS; https:// turns TLS on too)
  --cert FILE, --key FILE           client certificate and key (servers with --client-cert-auth)
  --user NAME[:PASSWORD]            authenticate (root, once auth is on); --password PASSWORD otherwise

serve flags:
  --name NAME                       member name (default "default")
  --data-dir DIR                    data directory (default "default.mergekv")
  --listen-client-urls URLS         comma-separated http:// or https:// URLs to serve clients on (default http://127.0.0.1:2379)
  --cert-file FILE, --key-file FILE TLS certificate and key for https:// client URLs
  --trusted-ca-file FILE            CA that client certificates must chain to
  --client-cert-auth                require and verify client certificates
  --advertise-client-urls URLS      URLs reported to clients (default: the listen URLs)
  --frontends N                     frontend worker threads (default: number of cores)
  --internal-replication K          frontends that must apply a write before it returns, 1..N (default 1)
  --snapshot-count N                change records between snapshots (default ${DEFAULT_OPTIONS.snapshotCount})
  --unsafe-no-fsync                 do not fsync (benchmarks only: a crash may lose acknowledged writes)
  --repair                          set unreadable records aside instead of refusing to start
  --enable-grpc-gateway[=false]     serve the v3 API as JSON over HTTP at /v3/... on the client URLs (default true)
  --cors ORIGINS                    comma-separated origins browsers may call the HTTP side from (default "*": any)
  --listen-metrics-urls URLS        serve /metrics (Prometheus), /health and /version on these http:// URLs too (the client URLs always do)
  --log-level LEVEL                 debug, info, warn or error (default info); logs are JSON lines on stderr
  --auth-token TYPE[,OPTIONS]       simple (default) or jwt,sign-method=RS256,priv-key=FILE,pub-key=FILE[,ttl=5m]
                                    (sign-method: RS256/384/512, PS256/384/512, ES256/384/512, HS256/384/512)
  --auth-token-ttl SECONDS          a simple token's life past its last use (default 300)
  --quota-backend-bytes N           raise NOSPACE past this many bytes on disk (default 2 GiB; 0 = default)
  --max-txn-ops N                   operations allowed in each list of a Txn (default 128)
  --max-request-bytes N             largest write request accepted (default 1572864: 1.5 MiB)
  --auto-compaction-mode MODE       periodic (default) or revision: how --auto-compaction-retention reads
  --auto-compaction-retention R     history kept by auto-compaction: periodic, a duration (1h, 30m) or whole
                                    hours; revision, a number of revisions (default 0: off, as etcd)
  --experimental-watch-progress-notify-interval D
                                    progress notifications for watches that ask (default 10m)
`;

export async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  try {
    if (command === "serve") await serve(rest);
    else if (command === "compact") await compact(rest);
    else if (command === "replication") await replication(rest);
    else if (command === "snapshot" && rest[0] === "restore") await restore(rest.slice(1));
    else if (command === "snapshot" && rest[0] === "status") await status(rest.slice(1));
    else if (!command || command === "help" || command === "--help" || command === "-h") process.stdout.write(USAGE);
    else throw new MergekvError("InvalidArgument", `unknown command ${JSON.stringify(command)}`);
  } catch (e) {
    process.stderr.write(`mergekv: ${isMergekvError(e) || isUsageError(e) ? (e as Error).message : (e as Error).stack}\n`);
    if (isUsageError(e) || (isMergekvError(e) && e.code === "InvalidArgument")) process.stderr.write(`\n${USAGE}`);
    process.exit(isUsageError(e) || (isMergekvError(e) && e.code === "InvalidArgument") ? 2 : 1);
  }
}

function isUsageError(e: unknown): boolean {
  return (e as { code?: string })?.code?.startsWith?.("ERR_PARSE_ARGS") ?? false;
}

async function serve(args: string[]): Promise<void> {
  const opts = parseServeFlags(args, process.env);
  const server = new MergekvServer(opts);
  let stopping = false;
  const stop = async (why: string, code: number) => {
    if (stopping) return;
    stopping = true;
    opts.log(`${why}: shutting down`);
    try {
      await server.stop();
      opts.log("stopped");
    } finally {
      process.exit(code);
    }
  };
  process.on("SIGTERM", () => void stop("SIGTERM", 0));
  process.on("SIGINT", () => void stop("SIGINT", 0));
  await server.start((message) => void stop(`fatal: ${message}`, 1));
  if (opts.unsafeNoFsync) opts.log("WARNING: --unsafe-no-fsync: acknowledged writes may be lost on a crash");
  const missing = missingNodeFlags(process.execArgv).join(" ");
  if (missing) {
    opts.log(`WARNING: node was started without ${missing}: writes can cost up to twice the CPU (frontends' garbage collection); run bin/mergekv.js directly, or node ${missing} bin/mergekv.js`);
  }
  if (!canGrowAhead()) opts.log("WARNING: Automerge's WebAssembly memory cannot be grown ahead (its instance was not reached): as it grows, writes will cost more garbage collection");
}

async function compact(args: string[]): Promise<void> {
  const { values } = parseArgs({ args, strict: true, options: { "data-dir": { type: "string" }, ...ADMIN_OPTIONS } });
  if (!!values["data-dir"] === !!values.endpoints) throw new MergekvError("InvalidArgument", "compact needs exactly one of --data-dir DIR (offline) or --endpoints URL (online)");
  const report = values["data-dir"] ? await compactOffline(values["data-dir"]) : await compactOnline(values as AdminFlags);
  if (report) printReport(report);
}

async function compactOffline(dataDir: string): Promise<CompactionReport> {
  const store = new LevelStore(dataDir);
  await store.open();
  try {
    const backend = await Backend.open(store, true, { internalReplication: 1, frontends: 1, snapshotCount: Number.MAX_SAFE_INTEGER, expireLeases: false, log: (l) => process.stderr.write(`${l}\n`) });
    const report = await compactStorage(backend, progressBar());
    await backend.close();
    return report;
  } finally {
    await store.close();
  }
}

/** Online: Maintenance.Defragment, which mergekv answers by compacting its storage. */
async function compactOnline(flags: AdminFlags): Promise<undefined> {
  const client = new AdminClient(flags);
  try {
    const dbSize = async () => Number((await client.call("etcdserverpb.Maintenance", "Status", {})).dbSize);
    const before = await dbSize();
    const started = Date.now();
    process.stderr.write(`compacting ${client.target} ...\n`);
    await client.call("etcdserverpb.Maintenance", "Defragment", {});
    const ms = Date.now() - started;
    const mb = (b: number) => `${(b / 1024 / 1024).toFixed(2)} MiB`;
    process.stdout.write(`compacted ${client.target} in ${ms} ms: data directory ${mb(before)} -> ${mb(await dbSize())} (the server logs the change records before and after)\n`);
  } finally {
    client.close();
  }
  return undefined;
}

/**
 * Shows a running server's replication factors and what each frontend has
 * applied; with --internal or --external, sets them first. A change lasts
 * until the server stops (--internal-replication sets it at start).
 */
async function replication(args: string[]): Promise<void> {
  const { values } = parseArgs({ args, strict: true, options: { internal: { type: "string" }, external: { type: "string" }, "write-out": { type: "string", short: "w", default: "simple" }, ...ADMIN_OPTIONS } });
  if (!values.endpoints) throw new MergekvError("InvalidArgument", "replication needs --endpoints URL");
  const form = values["write-out"];
  if (form !== "simple" && form !== "json") throw new MergekvError("InvalidArgument", `--write-out ${JSON.stringify(form)}: one of simple, json`);
  const setting = values.internal !== undefined || values.external !== undefined;
  const internal = intFlag("internal", values.internal, 0);
  const external = intFlag("external", values.external, 0, 0);
  const client = new AdminClient(values as AdminFlags);
  try {
    const r = setting ? await client.call("mergekvpb.Replication", "Set", { internal, external }) : await client.call("mergekvpb.Replication", "Status", {});
    process.stdout.write(form === "json" ? `${JSON.stringify(r)}\n` : replicationText(r));
  } finally {
    client.close();
  }
}

function replicationText(r: Wire): string {
  const header = r.header as Wire;
  const applied = r.applied as Wire[];
  const lines = [
    `internal replication: ${r.internal} of ${r.frontends} frontends must apply a write before it is answered`,
    `external replication: ${r.external} (peer servers: ${r.peers})`,
    `revision: ${header.revision}`,
    ...applied.map((f) => `frontend ${f.index} (actor ${f.actor}): applied revision ${f.revision}`),
  ];
  if (Number(r.internal) === 1) lines.push("(applied revisions as last reported: with internal replication 1 a frontend reports with its next answer)");
  return `${lines.join("\n")}\n`;
}

async function restore(args: string[]): Promise<void> {
  const { values, positionals } = parseArgs({ args, strict: true, allowPositionals: true, options: { "data-dir": { type: "string" } } });
  if (positionals.length !== 1 || !values["data-dir"]) throw new MergekvError("InvalidArgument", "snapshot restore needs a FILE and --data-dir DIR");
  const file = await fs.readFile(positionals[0]).catch((e: Error) => {
    throw new MergekvError("Unavailable", `cannot read ${positionals[0]}: ${e.message}`);
  });
  const store = new LevelStore(values["data-dir"]);
  await store.open();
  const started = Date.now();
  try {
    const bar = progressBar();
    const entries = await restoreSnapshot(file, store, (done, total) => bar("restoring", done, total));
    process.stdout.write(`restored ${entries} entries (${file.length} bytes) into ${values["data-dir"]} in ${Date.now() - started} ms\n`);
  } finally {
    await store.close();
  }
}

/** etcdctl's `snapshot status`, for a mergekv snapshot file: the same fields and output forms. */
async function status(args: string[]): Promise<void> {
  const { values, positionals } = parseArgs({ args, strict: true, allowPositionals: true, options: { "write-out": { type: "string", short: "w", default: "simple" } } });
  if (positionals.length !== 1) throw new MergekvError("InvalidArgument", "snapshot status needs a FILE");
  const form = values["write-out"];
  if (form !== "simple" && form !== "json" && form !== "table") throw new MergekvError("InvalidArgument", `--write-out ${JSON.stringify(form)}: one of simple, json, table`);
  const file = await fs.readFile(positionals[0]).catch((e: Error) => {
    throw new MergekvError("Unavailable", `cannot read ${positionals[0]}: ${e.message}`);
  });
  const s = snapshotStatus(file);
  const hash = s.hash.toString(16);
  if (form === "json") process.stdout.write(`${JSON.stringify(s)}\n`);
  else if (form === "simple") process.stdout.write(`${hash}, ${s.revision}, ${s.totalKey}, ${siBytes(s.totalSize)}\n`);
  else {
    const row = [hash, String(s.revision), String(s.totalKey), siBytes(s.totalSize)];
    const head = ["HASH", "REVISION", "TOTAL KEYS", "TOTAL SIZE"];
    const widths = head.map((h, i) => Math.max(h.length, row[i].length));
    const line = (cells: string[], center: boolean) => `|${cells.map((c, i) => ` ${center ? centered(c, widths[i]) : c.padStart(widths[i])} `).join("|")}|\n`;
    const rule = `+${widths.map((w) => "-".repeat(w + 2)).join("+")}+\n`;
    process.stdout.write(rule + line(head, true) + rule + line(row, false) + rule);
  }
}

const centered = (text: string, width: number): string => {
  const left = Math.floor((width - text.length) / 2);
  return " ".repeat(left) + text + " ".repeat(width - text.length - left);
};

/**
 * A size as etcdctl prints it (go-humanize's Bytes: SI units, "20 kB",
 * "1.5 MB"): rounded to tenths, then printed with one decimal below 10 and
 * none above, where Go's %.0f rounds a half to even (20.5 kB is "20 kB").
 */
export function siBytes(n: number): string {
  if (n < 10) return `${n} B`;
  const units = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];
  const e = Math.min(Math.floor(Math.log(n) / Math.log(1000)), units.length - 1);
  const tenths = Math.floor((n / 1000 ** e) * 10 + 0.5);
  if (tenths < 100) return `${(tenths / 10).toFixed(1)} ${units[e]}`;
  const whole = Math.floor(tenths / 10), rest = tenths % 10;
  return `${rest > 5 || (rest === 5 && whole % 2 === 1) ? whole + 1 : whole} ${units[e]}`;
}

function progressBar(): (stage: string, done?: number, total?: number) => void {
  let lastStage = "";
  let lastPercent = -1;
  const tty = process.stderr.isTTY;
  return (stage, done, total) => {
    if (stage !== lastStage) {
      if (lastStage && tty) process.stderr.write("\n");
      lastStage = stage;
      lastPercent = -1;
      if (total === undefined) process.stderr.write(`${stage}...\n`);
    }
    if (total === undefined || done === undefined || total === 0) return;
    const percent = Math.floor((done / total) * 100);
    if (percent === lastPercent || (!tty && percent % 10 !== 0 && percent !== 100)) return;
    lastPercent = percent;
    const width = 30;
    const filled = Math.round((percent / 100) * width);
    const bar = `${stage} [${"#".repeat(filled)}${"-".repeat(width - filled)}] ${percent}% (${done}/${total})`;
    process.stderr.write(tty ? `\r${bar}` : `${bar}\n`);
  };
}

function printReport(r: CompactionReport): void {
  const mb = (b: number) => `${(b / 1024 / 1024).toFixed(2)} MiB`;
  process.stdout.write(
    `compaction done in ${r.ms} ms\n` +
    `  change records: ${r.before.records} -> ${r.after.records}\n` +
    `  bytes on disk:  ${mb(r.before.bytes)} -> ${mb(r.after.bytes)}\n` +
    `  snapshot at revision ${r.snapshot.snapshotRev}: ${r.snapshot.buckets} buckets, ${r.snapshot.keys} key histories\n`);
}
