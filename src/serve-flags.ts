/**
 * `mergekv serve`'s flags, read as etcd reads its own: Go's boolean forms,
 * ETCD_* environment variables for flags the command line leaves out, Go
 * durations; bad values get a message naming the flag (or the variable).
 */
import { parseArgs } from "node:util";
import pino from "pino";
import { DEFAULT_OPTIONS, ServerOptions } from "./server";
import { MergekvError, isMergekvError } from "./errors";
import { parseGoDuration } from "./backend/go-duration";
import { parseAutoCompaction } from "./backend/auto-compactor";

const LOG_LEVELS = ["debug", "info", "warn", "error"];

/** An integer flag at least `min` (1: "a positive integer", 0: "a whole number"); `fallback` when not given. */
export function intFlag(flag: string, v: string | undefined, fallback: number, min = 1): number {
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!/^\d+$/.test(v) || !Number.isSafeInteger(n) || n < min) {
    throw new MergekvError("InvalidArgument", `--${flag} must be ${min === 1 ? "a positive integer" : "a whole number"}, got ${JSON.stringify(v)}`);
  }
  return n;
}

/** Flags that are booleans, which Go's flag package (and so etcd) also takes as --flag=true and --flag=false. */
const BOOLEAN_FLAGS = ["unsafe-no-fsync", "repair", "client-cert-auth", "enable-grpc-gateway"];

/**
 * Takes the boolean flags out of `args` as Go reads them: `--flag` and
 * `--flag=true` set, `--flag=false` clears, the last one given wins.
 */
export function takeBooleans(args: string[]): { rest: string[]; booleans: Map<string, boolean> } {
  const booleans = new Map<string, boolean>();
  const rest: string[] = [];
  for (const a of args) {
    const m = /^--([a-z-]+)(?:=(.*))?$/.exec(a);
    if (!m || !BOOLEAN_FLAGS.includes(m[1])) {
      rest.push(a);
      continue;
    }
    const v = (m[2] ?? "true").toLowerCase();
    if (v === "true" || v === "1" || v === "t") booleans.set(m[1], true);
    else if (v === "false" || v === "0" || v === "f") booleans.set(m[1], false);
    else throw new MergekvError("InvalidArgument", `--${m[1]} takes true or false, got ${JSON.stringify(m[2])}`);
  }
  return { rest, booleans };
}

/** serve's flags that take a value (parseArgs' table). */
const SERVE_OPTIONS = {
  name: { type: "string" },
  "data-dir": { type: "string" },
  "listen-client-urls": { type: "string" },
  "advertise-client-urls": { type: "string" },
  frontends: { type: "string" },
  "internal-replication": { type: "string" },
  "snapshot-count": { type: "string" },
  "experimental-watch-progress-notify-interval": { type: "string" },
  "quota-backend-bytes": { type: "string" },
  "listen-metrics-urls": { type: "string" },
  cors: { type: "string" },
  "cert-file": { type: "string" },
  "key-file": { type: "string" },
  "trusted-ca-file": { type: "string" },
  "log-level": { type: "string" },
  "auth-token": { type: "string" },
  "auth-token-ttl": { type: "string" },
  "auto-compaction-mode": { type: "string" },
  "max-txn-ops": { type: "string" },
  "max-request-bytes": { type: "string" },
  "auto-compaction-retention": { type: "string" },
} as const;

const ENV_PREFIX = "ETCD_";

/**
 * etcd reads each of its flags from an environment variable too, ETCD_ and
 * the flag's name in upper case with underscores (ETCD_DATA_DIR for
 * --data-dir), when the command line does not give it; container images
 * configure etcd that way. Read as etcd 3.4's SetFlagsFromEnv: an empty
 * variable counts as unset; one whose flag is also on the command line is
 * an error; an ETCD_ variable that names no flag of ours is reported and
 * left alone (etcd warns the same way of ones it does not know).
 * ETCD_CONFIG_FILE is an error: mergekv reads no configuration file, and
 * starting without the settings it holds would be wrong.
 * Returns the arguments with the variables' flags after them, and what to log.
 */
export function withEnvironmentFlags(argv: string[], env: NodeJS.ProcessEnv): { args: string[]; notes: string[] } {
  const known = new Set([...Object.keys(SERVE_OPTIONS), ...BOOLEAN_FLAGS]);
  const given = new Set(argv.map((a) => /^--?([a-z-]+)/.exec(a)?.[1]));
  const args = [...argv];
  const notes: string[] = [];
  for (const key of Object.keys(env).sort()) {
    if (!key.startsWith(ENV_PREFIX)) continue;
    const value = env[key] ?? "";
    const flag = key.slice(ENV_PREFIX.length).toLowerCase().replace(/_/g, "-");
    if (flag === "config-file") throw new MergekvError("InvalidArgument", `${key}: mergekv reads no configuration file; give its settings as flags or ${ENV_PREFIX}* variables`);
    if (!known.has(flag)) {
      notes.push(`unrecognized environment variable ${key}=${value}`);
      continue;
    }
    if (given.has(flag)) throw new MergekvError("InvalidArgument", `conflicting environment variable "${key}" is shadowed by corresponding command-line flag (either unset environment variable or disable flag)`);
    if (value === "") continue;
    args.push(`--${flag}=${value}`);
    notes.push(`recognized and used environment variable ${key}=${value}`);
  }
  return { args, notes };
}

/**
 * `env`: where ETCD_* variables are read from (withEnvironmentFlags); none
 * by default. A bad value from a variable is named by the variable, as etcd
 * names it ("invalid value "x" for ETCD_SNAPSHOT_COUNT: ...").
 */
export function parseServeFlags(argv: string[], env: NodeJS.ProcessEnv = {}): ServerOptions {
  const fromEnv = withEnvironmentFlags(argv, env);
  try {
    return parseFlags(fromEnv.args, fromEnv.notes);
  } catch (e) {
    const flag = /^--([a-z-]+)/.exec((e as Error).message)?.[1];
    const key = flag && `${ENV_PREFIX}${flag.toUpperCase().replace(/-/g, "_")}`;
    if (!isMergekvError(e) || !key || !env[key] || argv.some((a) => a.startsWith(`--${flag}`))) throw e;
    throw new MergekvError("InvalidArgument", `invalid value ${JSON.stringify(env[key])} for ${key}: ${e.message}`);
  }
}

function parseFlags(argv: string[], notes: string[]): ServerOptions {
  const { rest: args, booleans } = takeBooleans(argv);
  const { values } = parseArgs({
    args,
    strict: true,
    options: SERVE_OPTIONS,
  });
  const urls = (v: string | undefined) => v?.split(",").map((s) => s.trim()).filter(Boolean);
  const level = values["log-level"] ?? "info";
  if (!LOG_LEVELS.includes(level)) throw new MergekvError("InvalidArgument", `--log-level must be one of ${LOG_LEVELS.join(", ")}, got ${JSON.stringify(level)}`);
  const logger = pino({ level, base: { name: values.name ?? DEFAULT_OPTIONS.name } }, pino.destination(2));
  for (const note of notes) (note.startsWith("unrecognized") ? logger.warn(note) : logger.info(note));
  const listen = urls(values["listen-client-urls"]) ?? DEFAULT_OPTIONS.listenClientUrls;
  const frontends = intFlag("frontends", values.frontends, DEFAULT_OPTIONS.frontends);
  return {
    ...DEFAULT_OPTIONS,
    name: values.name ?? DEFAULT_OPTIONS.name,
    dataDir: values["data-dir"] ?? DEFAULT_OPTIONS.dataDir,
    listenClientUrls: listen,
    advertiseClientUrls: urls(values["advertise-client-urls"]) ?? listen,
    frontends,
    internalReplication: intFlag("internal-replication", values["internal-replication"], DEFAULT_OPTIONS.internalReplication),
    snapshotCount: intFlag("snapshot-count", values["snapshot-count"], DEFAULT_OPTIONS.snapshotCount),
    unsafeNoFsync: booleans.get("unsafe-no-fsync") ?? false,
    repair: booleans.get("repair") ?? false,
    listenMetricsUrls: urls(values["listen-metrics-urls"]) ?? [],
    tls: {
      certFile: values["cert-file"] ?? "",
      keyFile: values["key-file"] ?? "",
      trustedCaFile: values["trusted-ca-file"] ?? "",
      clientCertAuth: booleans.get("client-cert-auth") ?? false,
    },
    authToken: values["auth-token"] ?? DEFAULT_OPTIONS.authToken,
    authTokenTtlMs: intFlag("auth-token-ttl", values["auth-token-ttl"], DEFAULT_OPTIONS.authTokenTtlMs / 1000) * 1000,
    log: (line) => logger.info(line),
    quotaBackendBytes: values["quota-backend-bytes"] === "0" ? DEFAULT_OPTIONS.quotaBackendBytes : intFlag("quota-backend-bytes", values["quota-backend-bytes"], DEFAULT_OPTIONS.quotaBackendBytes),
    maxTxnOps: intFlag("max-txn-ops", values["max-txn-ops"], DEFAULT_OPTIONS.maxTxnOps),
    maxRequestBytes: intFlag("max-request-bytes", values["max-request-bytes"], DEFAULT_OPTIONS.maxRequestBytes),
    autoCompaction: parseAutoCompaction(values["auto-compaction-mode"] ?? "periodic", values["auto-compaction-retention"] ?? "0"),
    enableGrpcGateway: booleans.get("enable-grpc-gateway") ?? true,
    cors: urls(values.cors) ?? DEFAULT_OPTIONS.cors,
    watchProgressNotifyIntervalMs: duration("experimental-watch-progress-notify-interval", values["experimental-watch-progress-notify-interval"], DEFAULT_OPTIONS.watchProgressNotifyIntervalMs),
  };
}

/** A Go duration as etcd's flags take it: "10m", "5s", "250ms", "1h30m". */
export function duration(flag: string, v: string | undefined, fallbackMs: number): number {
  if (v === undefined) return fallbackMs;
  const ms = parseGoDuration(v);
  if (ms === undefined || ms <= 0) throw new MergekvError("InvalidArgument", `--${flag} must be a positive duration such as 10m, 5s or 250ms, got ${JSON.stringify(v)}`);
  return ms;
}
