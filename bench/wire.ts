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

type Unary = (req: Msg, opts: grpc.CallOptions, cb: (e: grpc.ServiceError | null, res: Msg) => void) => void;

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

/** Calls one unary method with a deadline. */
export function call(fn: Unary, self: object, req: Msg, timeoutMs: number): Promise<Msg> {
  return new Promise((resolve, reject) => {
    fn.call(self, req, { deadline: Date.now() + timeoutMs }, (e, res) => (e ? reject(e) : resolve(res)));
  });
}
