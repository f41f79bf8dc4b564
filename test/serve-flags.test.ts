/*
 * parseServeFlags. --auth-token is handed to the server as given (checked,
 * with its key files, when the server is made); --auth-token-ttl is whole
 * seconds, as in etcd. The auto-compaction flags and durations read as
 * etcd reads them. ETCD_* environment variables, as etcd 3.4 reads them.
 */
import { parseServeFlags, withEnvironmentFlags } from "../src/serve-flags";
import { MergekvServer } from "../src/server";
import { MergekvError } from "../src/errors";

test("defaults: simple tokens living 300 s; both flags are taken", () => {
  const defaults = parseServeFlags([]);
  expect([defaults.authToken, defaults.authTokenTtlMs]).toEqual(["simple", 300_000]);
  const opts = parseServeFlags(["--auth-token", "jwt,sign-method=ES256,priv-key=/k.pem", "--auth-token-ttl", "60"]);
  expect([opts.authToken, opts.authTokenTtlMs]).toEqual(["jwt,sign-method=ES256,priv-key=/k.pem", 60_000]);
});

test("a bad --auth-token-ttl is refused; a bad --auth-token when the server is made, before anything opens", () => {
  for (const ttl of ["0", "-5", "5m", "1.5"]) {
    expect(() => parseServeFlags([`--auth-token-ttl=${ttl}`])).toThrow(new MergekvError("InvalidArgument", `--auth-token-ttl must be a positive integer, got ${JSON.stringify(ttl)}`));
  }
  const opts = parseServeFlags(["--auth-token", "jwt,sign-method=RS256,priv-key=/no/such/key.pem", "--data-dir", "/no/such/dir"]);
  expect(() => new MergekvServer(opts)).toThrow(/^--auth-token: cannot read priv-key \/no\/such\/key\.pem: ENOENT/);
});

test("auto-compaction: off by default, as etcd; the mode and retention read as etcd reads them", () => {
  expect(parseServeFlags([]).autoCompaction).toBeNull();
  expect(parseServeFlags(["--auto-compaction-retention", "1"]).autoCompaction).toEqual({ mode: "periodic", retentionMs: 3_600_000 });
  expect(parseServeFlags(["--auto-compaction-retention=30m"]).autoCompaction).toEqual({ mode: "periodic", retentionMs: 1_800_000 });
  expect(parseServeFlags(["--auto-compaction-mode", "revision", "--auto-compaction-retention", "1000"]).autoCompaction).toEqual({ mode: "revision", retentionRevisions: 1000 });
  expect(() => parseServeFlags(["--auto-compaction-mode", "hourly"])).toThrow(new MergekvError("InvalidArgument", 'unknown auto-compaction-mode "hourly"'));
});

test("durations take Go's syntax, as etcd's flags do", () => {
  expect(parseServeFlags(["--experimental-watch-progress-notify-interval", "1m30s"]).watchProgressNotifyIntervalMs).toBe(90_000);
  for (const bad of ["0", "-1s", "10", "soon"]) {
    expect(() => parseServeFlags([`--experimental-watch-progress-notify-interval=${bad}`])).toThrow(
      new MergekvError("InvalidArgument", `--experimental-watch-progress-notify-interval must be a positive duration such as 10m, 5s or 250ms, got ${JSON.stringify(bad)}`),
    );
  }
});

test("--max-txn-ops and --max-request-bytes: etcd's defaults, positive integers only", () => {
  const defaults = parseServeFlags([]);
  expect([defaults.maxTxnOps, defaults.maxRequestBytes]).toEqual([128, 1.5 * 1024 * 1024]);
  const opts = parseServeFlags(["--max-txn-ops", "1024", "--max-request-bytes", "10485760"]);
  expect([opts.maxTxnOps, opts.maxRequestBytes]).toEqual([1024, 10_485_760]);
  for (const [flag, bad] of [["max-txn-ops", "0"], ["max-request-bytes", "1.5"], ["max-request-bytes", "1MiB"]]) {
    expect(() => parseServeFlags([`--${flag}=${bad}`])).toThrow(new MergekvError("InvalidArgument", `--${flag} must be a positive integer, got ${JSON.stringify(bad)}`));
  }
});

test("boolean flags as Go reads them: --flag, --flag=true, --flag=false, the last one winning", () => {
  const defaults = parseServeFlags([]);
  expect([defaults.enableGrpcGateway, defaults.unsafeNoFsync, defaults.repair, defaults.tls.clientCertAuth]).toEqual([true, false, false, false]);
  expect(parseServeFlags(["--enable-grpc-gateway=false"]).enableGrpcGateway).toBe(false);
  expect(parseServeFlags(["--enable-grpc-gateway=false", "--enable-grpc-gateway"]).enableGrpcGateway).toBe(true);
  expect(parseServeFlags(["--client-cert-auth=true", "--repair"]).tls.clientCertAuth).toBe(true);
  expect(parseServeFlags(["--unsafe-no-fsync", "--unsafe-no-fsync=0"]).unsafeNoFsync).toBe(false);
  expect(() => parseServeFlags(["--repair=maybe"])).toThrow(new MergekvError("InvalidArgument", '--repair takes true or false, got "maybe"'));
});

test("ETCD_* environment variables set the flags the command line leaves out, as etcd reads them", () => {
  const env = {
    ETCD_DATA_DIR: "/var/lib/etcd",
    ETCD_LISTEN_CLIENT_URLS: "http://0.0.0.0:2379",
    ETCD_CLIENT_CERT_AUTH: "true",
    ETCD_QUOTA_BACKEND_BYTES: "",
    ETCD_INITIAL_CLUSTER: "default=http://localhost:2380",
    ETCDCTL_API: "3",
    PATH: "/bin",
  };
  const opts = parseServeFlags(["--name", "one"], env);
  expect([opts.name, opts.dataDir, opts.listenClientUrls, opts.tls.clientCertAuth]).toEqual(["one", "/var/lib/etcd", ["http://0.0.0.0:2379"], true]);
  expect(opts.quotaBackendBytes).toBe(parseServeFlags([]).quotaBackendBytes); // empty counts as unset
  expect(withEnvironmentFlags(["--name", "one"], env).notes).toEqual([
    "recognized and used environment variable ETCD_CLIENT_CERT_AUTH=true",
    "recognized and used environment variable ETCD_DATA_DIR=/var/lib/etcd",
    "unrecognized environment variable ETCD_INITIAL_CLUSTER=default=http://localhost:2380",
    "recognized and used environment variable ETCD_LISTEN_CLIENT_URLS=http://0.0.0.0:2379",
  ]);
  expect(() => parseServeFlags(["--data-dir=/d"], { ETCD_DATA_DIR: "/e" })).toThrow(
    new MergekvError("InvalidArgument", 'conflicting environment variable "ETCD_DATA_DIR" is shadowed by corresponding command-line flag (either unset environment variable or disable flag)'));
  expect(() => parseServeFlags([], { ETCD_CONFIG_FILE: "/etc/etcd.yml" })).toThrow(
    new MergekvError("InvalidArgument", "ETCD_CONFIG_FILE: mergekv reads no configuration file; give its settings as flags or ETCD_* variables"));
  expect(() => parseServeFlags([], { ETCD_SNAPSHOT_COUNT: "many" })).toThrow(
    new MergekvError("InvalidArgument", 'invalid value "many" for ETCD_SNAPSHOT_COUNT: --snapshot-count must be a positive integer, got "many"'));
  expect(() => parseServeFlags([], { ETCD_CLIENT_CERT_AUTH: "yes" })).toThrow(
    new MergekvError("InvalidArgument", 'invalid value "yes" for ETCD_CLIENT_CERT_AUTH: --client-cert-auth takes true or false, got "yes"'));
  expect(parseServeFlags([]).dataDir).toBe("default.mergekv"); // nothing is read from this process's own environment unless asked
});
