/**
 * etcd's gRPC service definitions for the benchmark's raw clients and the
 * no-op server: loaded at run time from the `etcd3` package's proto files
 * with the options the etcd3 client itself uses (the same bytes on the wire).
 */
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import * as path from "node:path";

const PROTO_DIR = path.dirname(require.resolve("etcd3/proto/rpc.proto"));
const LOADER_OPTIONS: protoLoader.Options = { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true };

/** A decoded message as proto-loader gives it (int64 as strings, bytes as Buffers). */
export type Msg = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

export interface Services {
  KV: grpc.ServiceDefinition;
  Maintenance: grpc.ServiceDefinition;
}

let cached: Services | null = null;

export function services(): Services {
  if (!cached) {
    const def = protoLoader.loadSync(path.join(PROTO_DIR, "rpc.proto"), { ...LOADER_OPTIONS, includeDirs: [PROTO_DIR] });
    const pkg = grpc.loadPackageDefinition(def) as unknown as { etcdserverpb: Record<string, { service: grpc.ServiceDefinition }> };
    cached = { KV: pkg.etcdserverpb.KV.service, Maintenance: pkg.etcdserverpb.Maintenance.service };
  }
  return cached;
}

/** What a grpc-js unary stub returns: the call, cancellable. */
interface CallHandle {
  cancel(): void;
}

type Unary = (req: Msg, opts: grpc.CallOptions, cb: (e: grpc.ServiceError | null, res: Msg) => void) => CallHandle;

export interface RawKv {
  Put: Unary;
  Range: Unary;
  Txn: Unary;
  close(): void;
}

export interface RawMaintenance {
  Defragment: Unary;
  Status: Unary;
  close(): void;
}

/** Channel options shared by every raw client: no retries hiding errors, big enough messages. */
const CHANNEL_OPTIONS: grpc.ChannelOptions = {
  "grpc.enable_retries": 0,
  "grpc.max_receive_message_length": 64 * 1024 * 1024,
  // Separate channels for separate clients (grpc-js would otherwise share one subchannel per target).
  "grpc.use_local_subchannel_pool": 1,
};

export function rawKv(endpoint: string): RawKv {
  const Client = grpc.makeGenericClientConstructor(services().KV, "KV");
  return new Client(endpoint, grpc.credentials.createInsecure(), CHANNEL_OPTIONS) as unknown as RawKv;
}

export function rawMaintenance(endpoint: string): RawMaintenance {
  const Client = grpc.makeGenericClientConstructor(services().Maintenance, "Maintenance");
  return new Client(endpoint, grpc.credentials.createInsecure(), CHANNEL_OPTIONS) as unknown as RawMaintenance;
}

/** Calls one unary method with a gRPC deadline (costly in grpc-js: for rare calls only). */
export function call(fn: Unary, self: object, req: Msg, timeoutMs: number): Promise<Msg> {
  return new Promise((resolve, reject) => {
    fn.call(self, req, { deadline: Date.now() + timeoutMs }, (e, res) => (e ? reject(e) : resolve(res)));
  });
}

/** How often the watchdog looks for overdue calls. */
const WATCHDOG_INTERVAL_MS = 1_000;

/**
 * Times calls out without a per-call gRPC deadline: in grpc-js a deadline
 * costs about as much client CPU as the call itself (measured: 450 vs 220
 * µs per put), which would make the load generator the bottleneck. One
 * timer per client cancels whatever is overdue instead (the call then fails
 * with CANCELLED and is counted as an error).
 */
export class Watchdog {
  private readonly inflight = new Map<CallHandle, number>();
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly timeoutMs: number) {
    this.timer = setInterval(() => this.sweep(), WATCHDOG_INTERVAL_MS);
    this.timer.unref();
  }

  call(fn: Unary, self: object, req: Msg): Promise<Msg> {
    return new Promise((resolve, reject) => {
      const handle = fn.call(self, req, {}, (e, res) => {
        this.inflight.delete(handle);
        if (e) reject(e);
        else resolve(res);
      });
      this.inflight.set(handle, performance.now());
    });
  }

  private sweep(): void {
    const overdue = performance.now() - this.timeoutMs;
    for (const [handle, started] of this.inflight) if (started < overdue) handle.cancel();
  }

  close(): void {
    clearInterval(this.timer);
  }
}
