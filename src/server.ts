/**
 * One mergekv server: the store, the backend, the frontend workers and the
 * gRPC endpoints, started and stopped in order.
 */
import * as os from "node:os";
import * as http from "node:http";
import { readFileSync } from "node:fs";
import { loadGatewayRoutes } from "./api/gateway";
import { electionService, lockService } from "./api/concurrency-service";
import { healthService } from "./api/health-service";
import { HttpEndpoints, httpEndpoints, registerGauges, serveMetrics } from "./metrics";
import { Backend, DEFAULT_SNAPSHOT_COUNT, SnapshotReport } from "./backend/backend";
import { FoldWorker, mainThreadFolder } from "./backend/fold-worker";
import { FrontendPool } from "./frontend/pool";
import { LevelStore } from "./persist/level-store";
import { Store } from "./persist/store";
import { loadServices } from "./api/proto";
import { GrpcServer, TlsFiles } from "./api/grpc-server";
import { HeaderSource, REQUEST_BYTES_MAX, transportBytesMax } from "./api/rpc";
import { TXN_OPS_MAX } from "./frontend/requests";
import { clusterService, ETCD_API_VERSION, ETCD_CLUSTER_VERSION, kvService, maintenanceService } from "./api/services";
import { watchService, WatchEncoder } from "./api/watch-service";
import { leaseService } from "./api/lease-service";
import { WatchHub } from "./backend/watch-hub";
import { Alarms } from "./backend/alarms";
import { Members } from "./backend/members";
import { AuthStore } from "./backend/auth";
import { TOKEN_TTL_MS } from "./backend/simple-tokens";
import { TokenProvider } from "./backend/token-provider";
import { tokenProviderFor } from "./backend/token-options";
import { AutoCompaction, AutoCompactor } from "./backend/auto-compactor";
import { authService } from "./api/auth-service";
import { replicationService } from "./api/replication-service";
import { MergekvError } from "./errors";

export interface ServerOptions {
  name: string;
  dataDir: string;
  listenClientUrls: string[];
  advertiseClientUrls: string[];
  frontends: number;
  internalReplication: number;
  snapshotCount: number;
  unsafeNoFsync: boolean;
  repair: boolean;
  /** NOSPACE is raised when the data directory grows past this (etcd's default: 2 GiB). */
  quotaBackendBytes: number;
  /** TLS on https:// client URLs (etcd's --cert-file, --key-file, --trusted-ca-file, --client-cert-auth). */
  tls: TlsOptions;
  /** Where /metrics and /health are served (etcd's --listen-metrics-urls); none by default. */
  listenMetricsUrls: string[];
  /** How often a watch that asked for progress notifications gets one (etcd: 10 minutes). */
  watchProgressNotifyIntervalMs: number;
  /** etcd's --auth-token: "simple", or "jwt,sign-method=...,priv-key=...,pub-key=...,ttl=..." (backend/token-options.ts). */
  authToken: string;
  /** etcd's --auth-token-ttl: a simple token's life past its last use. */
  authTokenTtlMs: number;
  /** etcd's --auto-compaction-mode and --auto-compaction-retention; null: off (etcd's default). */
  autoCompaction: AutoCompaction | null;
  /** etcd's --max-txn-ops: operations in each of a Txn's compare, success and failure lists. */
  maxTxnOps: number;
  /** etcd's --max-request-bytes: larger writes get "request is too large"; messages past it + 512 KiB, gRPC's error. */
  maxRequestBytes: number;
  /** etcd's --enable-grpc-gateway: the v3 API as JSON over HTTP at /v3/... on the client URLs (api/gateway.ts). */
  enableGrpcGateway: boolean;
  /** etcd's --cors: origins browsers may call the client URLs' HTTP side from ("*": any, the default). */
  cors: string[];
  log: (line: string) => void;
}

/** etcd's default --quota-backend-bytes. */
export const DEFAULT_QUOTA_BYTES = 2 * 1024 * 1024 * 1024;
/** How often the data directory's size is checked against the quota. */
export const QUOTA_CHECK_INTERVAL_MS = 1_000;

export const DEFAULT_OPTIONS: ServerOptions = {
  name: "default",
  dataDir: "default.mergekv",
  listenClientUrls: ["http://127.0.0.1:2379"],
  advertiseClientUrls: ["http://127.0.0.1:2379"],
  frontends: Math.max(1, os.availableParallelism()),
  internalReplication: 1,
  snapshotCount: DEFAULT_SNAPSHOT_COUNT,
  unsafeNoFsync: false,
  repair: false,
  watchProgressNotifyIntervalMs: 10 * 60 * 1000,
  quotaBackendBytes: DEFAULT_QUOTA_BYTES,
  listenMetricsUrls: [],
  enableGrpcGateway: true,
  cors: ["*"],
  tls: { certFile: "", keyFile: "", trustedCaFile: "", clientCertAuth: false },
  authToken: "simple",
  authTokenTtlMs: TOKEN_TTL_MS,
  autoCompaction: null,
  maxTxnOps: TXN_OPS_MAX,
  maxRequestBytes: REQUEST_BYTES_MAX,
  log: (line) => process.stderr.write(`${new Date().toISOString()} ${line}\n`),
};

/** What the gRPC services call. */
export interface Engine {
  pool: FrontendPool;
  backend: Backend;
  store: Store;
  headers: HeaderSource;
  name: string;
  clientUrls: string[];
  alarms: Alarms;
  members: Members;
  auth: AuthStore;
  onInternalError: (e: unknown) => void;
  /** --max-request-bytes. */
  readonly requestBytesMax: number;
  /** --max-txn-ops. */
  readonly txnOpsMax: number;
  compactStorage(): Promise<CompactionReport>;
}

export interface CompactionReport {
  snapshot: SnapshotReport;
  before: { records: number; bytes: number };
  after: { records: number; bytes: number };
  ms: number;
}

/** Saves a snapshot covering every record so far, deletes them, reclaims their space. */
export async function compactStorage(backend: Backend, onProgress?: (stage: string, done?: number, total?: number) => void): Promise<CompactionReport> {
  const started = Date.now();
  onProgress?.("counting records");
  const before = await backend.log.stats();
  const progress = (done: number, total: number) => onProgress?.("saving snapshot", Math.min(done, total), total);
  let snapshot = await backend.snapshot(progress);
  if (backend.uncoveredRecords > 0) snapshot = await backend.snapshot(progress); // one was already running: cover the rest
  onProgress?.("reclaiming space");
  await backend.log.reclaim();
  const after = await backend.log.stats();
  return { snapshot, before, after, ms: Date.now() - started };
}

function splitHostPort(address: string): [string, number] {
  const i = address.lastIndexOf(":");
  return [address.slice(0, i).replace(/^\[|\]$/g, ""), Number(address.slice(i + 1))];
}

export interface TlsOptions {
  certFile: string;
  keyFile: string;
  trustedCaFile: string;
  clientCertAuth: boolean;
}

/** TLS for one client URL: from the files for https://, none for http://. */
export function tlsFor(url: string, tls: TlsOptions): TlsFiles | undefined {
  if (!url.startsWith("https://")) return undefined;
  if (!tls.certFile || !tls.keyFile) throw new MergekvError("InvalidArgument", `${url}: https:// needs --cert-file and --key-file`);
  if (tls.clientCertAuth && !tls.trustedCaFile) throw new MergekvError("InvalidArgument", "--client-cert-auth needs --trusted-ca-file");
  const read = (flag: string, file: string) => {
    try {
      return readFileSync(file);
    } catch (e) {
      throw new MergekvError("InvalidArgument", `${flag} ${file}: ${(e as Error).message}`);
    }
  };
  const ca = tls.trustedCaFile ? read("--trusted-ca-file", tls.trustedCaFile) : undefined;
  return { cert: read("--cert-file", tls.certFile), key: read("--key-file", tls.keyFile), ca, clientCertAuth: tls.clientCertAuth };
}

/** "http://127.0.0.1:2379" or "https://…" -> "127.0.0.1:2379". */
export function bindAddress(url: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new MergekvError("InvalidArgument", `invalid URL ${JSON.stringify(url)}: expected http://host:port`);
  }
  if (u.protocol !== "http:" && u.protocol !== "https:") throw new MergekvError("InvalidArgument", `${url}: scheme must be http:// or https://`);
  if (!u.port) throw new MergekvError("InvalidArgument", `${url}: a port is required`);
  return `${u.hostname}:${u.port}`;
}

export class MergekvServer implements Engine {
  readonly store: Store;
  backend!: Backend;
  private folds: FoldWorker | undefined;
  pool!: FrontendPool;
  headers!: HeaderSource;
  watches!: WatchHub;
  alarms!: Alarms;
  members!: Members;
  auth!: AuthStore;
  /** Built from --auth-token in the constructor, so bad options or key files fail before anything opens. */
  private readonly tokens: TokenProvider;
  private quotaTimer: NodeJS.Timeout | null = null;
  private autoCompactor: AutoCompactor | null = null;
  private readonly metricsServers: http.Server[] = [];
  private grpcServer: GrpcServer | null = null;
  readonly ports: number[] = [];
  private stopped = false;
  /** Aborted by `stop`: ends the watch streams, which would hold a graceful shutdown open. */
  private readonly stopping = new AbortController();

  constructor(readonly opts: ServerOptions) {
    if (!Number.isInteger(opts.frontends) || opts.frontends < 1) throw new MergekvError("InvalidArgument", `--frontends must be a positive integer, got ${opts.frontends}`);
    if (!Number.isInteger(opts.internalReplication) || opts.internalReplication < 1 || opts.internalReplication > opts.frontends) {
      throw new MergekvError("InvalidArgument", `--internal-replication must be between 1 and --frontends (${opts.frontends}), got ${opts.internalReplication}`);
    }
    for (const [flag, n] of [["snapshot-count", opts.snapshotCount], ["max-txn-ops", opts.maxTxnOps], ["max-request-bytes", opts.maxRequestBytes]] as const) {
      if (!Number.isSafeInteger(n) || n < 1) throw new MergekvError("InvalidArgument", `--${flag} must be a positive integer, got ${n}`);
    }
    opts.listenClientUrls.forEach(bindAddress);
    for (const url of opts.listenClientUrls) tlsFor(url, opts.tls); // bad TLS flags fail before anything opens
    this.tokens = tokenProviderFor(opts.authToken, { simpleTtlMs: opts.authTokenTtlMs });
    this.store = new LevelStore(opts.dataDir);
  }

  get name(): string { return this.opts.name; }
  get requestBytesMax(): number { return this.opts.maxRequestBytes; }
  get txnOpsMax(): number { return this.opts.maxTxnOps; }
  get clientUrls(): string[] { return this.opts.advertiseClientUrls; }

  onInternalError = (e: unknown): void => {
    this.opts.log(`internal error: ${(e as Error)?.stack ?? String(e)}`);
  };

  async compactStorage(): Promise<CompactionReport> {
    const r = await compactStorage(this.backend);
    this.opts.log(`storage compaction: ${r.before.records} -> ${r.after.records} change records, ${r.before.bytes} -> ${r.after.bytes} bytes, ${r.ms} ms`);
    return r;
  }

  async start(onFatal: (message: string) => void): Promise<void> {
    const log = this.opts.log;
    const started = Date.now();
    await this.store.open();
    this.backend = await Backend.open(this.store, !this.opts.unsafeNoFsync, {
      internalReplication: this.opts.internalReplication,
      frontends: this.opts.frontends,
      snapshotCount: this.opts.snapshotCount,
      repair: this.opts.repair,
      broadcast: (m) => this.pool.broadcast(m),
      revokeKeys: (keys, lease) => this.pool.execute({ kind: "revokeKeys", req: { keys, lease } }).then((r) => Math.max(r.revision, this.backend.revision)),
      onEvents: (events, rev) => this.watches.publishSoon(events, rev),
      log,
    });
    const backend = this.backend;
    this.folds = new FoldWorker((why) => {
      log(`${why}; folds run on the main thread from now on`);
      backend.replica.buckets.foldWith(mainThreadFolder(log));
    }, log);
    backend.replica.buckets.foldWith(this.folds.fold);
    this.watches = new WatchHub({ mvcc: backend.replica.mvcc, get revision() { return backend.revision; } });
    this.headers = { clusterId: this.backend.meta.clusterId, memberId: this.backend.meta.memberId, raftTerm: 1 };
    this.auth = await AuthStore.load(this.backend.log, this.tokens);
    this.alarms = await Alarms.load(this.backend.log);
    this.members = await Members.load(this.backend.log, {
      id: this.backend.meta.memberId,
      name: this.opts.name,
      peerURLs: [],
      clientURLs: this.opts.advertiseClientUrls,
      isLearner: false,
    });
    this.pool = new FrontendPool(this.opts.frontends, this.backend, onFatal, this.opts.maxTxnOps);
    await this.pool.start(this.backend.takeBootstrap());
    const warmUpMs = Math.max(...this.pool.warmUps.map((w) => w.ms));
    log(`recovered revision ${this.backend.revision} (${this.backend.replica.mvcc.size} keys) and started ${this.opts.frontends} frontends in ${Date.now() - started} ms (warm-up ${warmUpMs.toFixed(0)} ms)`);

    this.quotaTimer = setInterval(() => void this.checkQuota(), QUOTA_CHECK_INTERVAL_MS);
    this.quotaTimer.unref();
    await this.checkQuota();

    const services = loadServices();
    const server = new GrpcServer({
      receiveBytesMax: transportBytesMax(this.opts.maxRequestBytes),
      http: this.httpEndpoints(),
      gateway: this.opts.enableGrpcGateway ? loadGatewayRoutes() : undefined,
      cors: this.opts.cors,
    });
    server.addService(services.KV, kvService(this));
    server.addService(services.Maintenance, maintenanceService(this));
    server.addService(services.Cluster, clusterService(this));
    server.addService(services.Watch, watchService(this, this.watches, services.Watch.Watch.responseSerialize as unknown as WatchEncoder, this.opts.watchProgressNotifyIntervalMs, this.stopping.signal));
    server.addService(services.Lease, leaseService(this, this.stopping.signal));
    server.addService(services.Auth, authService(this));
    server.addService(services.Lock, lockService(this, this.watches, this.stopping.signal));
    server.addService(services.Election, electionService(this, this.watches, this.stopping.signal));
    server.addService(services.Health, healthService(this, this.stopping.signal));
    server.addService(services.Replication, replicationService(this));
    this.backend.startLeaseExpiry(); // clients can reach us from now on to keep their leases alive
    if (this.opts.autoCompaction) {
      this.autoCompactor = new AutoCompactor(this.opts.autoCompaction, backend, log);
      this.autoCompactor.start();
    }
    for (const url of this.opts.listenClientUrls) {
      const [host, requested] = splitHostPort(bindAddress(url));
      const port = await server.listen(host, requested, tlsFor(url, this.opts.tls)).catch((e: Error) => {
        throw new MergekvError("Unavailable", `cannot listen on ${url}: ${e.message}`, e);
      });
      this.ports.push(port);
      log(`serving client requests on ${bindAddress(url).replace(/:\d+$/, `:${port}`)}${url.startsWith("https://") ? " (TLS)" : ""}`);
    }
    this.grpcServer = server;
    await this.startMetrics();
  }

  private async startMetrics(): Promise<void> {
    registerGauges({
      revision: () => this.backend.revision,
      keys: () => this.backend.replica.mvcc.size,
      watchers: () => this.watches.size,
      leases: () => this.backend.leases.size,
    });
    for (const url of this.opts.listenMetricsUrls) {
      const [host, port] = splitHostPort(bindAddress(url));
      const server = await serveMetrics(host, port, this.httpEndpoints()).catch((e: Error) => {
        throw new MergekvError("Unavailable", `cannot listen on ${url}: ${e.message}`, e);
      });
      this.metricsServers.push(server);
      this.opts.log(`serving /metrics and /health on ${host}:${(server.address() as { port: number }).port}`);
    }
  }

  /** /metrics, /health and /version (metrics.ts), for the client and metrics URLs. */
  private httpEndpoints(): HttpEndpoints {
    return httpEndpoints(() => this.health(), { server: ETCD_API_VERSION, cluster: ETCD_CLUSTER_VERSION });
  }

  /** etcd's /health: false while an alarm is raised or persistence has failed. */
  health(): { ok: boolean; reason: string } {
    const alarms = this.alarms.get("None");
    if (alarms.length > 0) return { ok: false, reason: `ALARM ${[...new Set(alarms.map((a) => a.alarm.toUpperCase()))].join(",")}` };
    if (this.backend.log.failed) return { ok: false, reason: "persistence failed" };
    return { ok: true, reason: "" };
  }

  private async checkQuota(): Promise<void> {
    const size = await this.store.sizeBytes().catch(() => 0);
    if (size <= this.opts.quotaBackendBytes) return;
    const { raised } = await this.alarms.activate(this.headers.memberId, "Nospace").catch(() => ({ raised: false })); // a failed write shows in /health
    if (raised) {
      this.opts.log(`alarm NOSPACE: data directory is ${size} bytes, over --quota-backend-bytes ${this.opts.quotaBackendBytes}; puts are refused until it is disarmed`);
    }
  }

  /** Graceful: stop accepting, finish what is in flight, make it durable, close. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.quotaTimer) clearInterval(this.quotaTimer);
    this.autoCompactor?.stop();
    for (const m of this.metricsServers) m.close();
    const server = this.grpcServer;
    if (server) {
      const drained = server.shutdown();
      this.stopping.abort(); // after shutdown began, so no stream starts after it
      await Promise.race([
        drained,
        new Promise<void>((r) => setTimeout(r, 5_000).unref()),
      ]);
      server.forceShutdown();
    }
    if (this.backend) await this.backend.close();
    await this.folds?.stop();
    if (this.pool) await this.pool.stop();
    await this.store.close();
  }
}
