/**
 * A raw gRPC client for etcd's KV, Maintenance and Cluster services, built
 * from the `etcd3` package's proto files with the loader options the server
 * and the etcd3 client use. Lets tests see the exact status `code` and
 * `details` a server answers, without any client-side translation or retry.
 */
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import * as path from "node:path";

const PROTO_DIR = path.dirname(require.resolve("etcd3/proto/rpc.proto"));
const LOADER_OPTIONS: protoLoader.Options = { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true };

/* eslint-disable @typescript-eslint/no-explicit-any */
export type Msg = Record<string, any>;

/** Our own receive limit: large enough never to be what rejects a test's response. */
const CLIENT_MESSAGE_BYTES_MAX = 64 * 1024 * 1024;
/** Unary deadline: a hung server fails the test instead of hanging it. */
const CALL_DEADLINE_MS = 20_000;

type Service = "KV" | "Maintenance" | "Cluster";

export interface RawClient {
  /** Calls `service.method` once; rejects with the grpc ServiceError (code, details). */
  call(service: Service, method: string, req: Msg): Promise<Msg>;
  close(): void;
}

let pkg: Record<string, grpc.ServiceClientConstructor> | undefined;

function services(): Record<string, grpc.ServiceClientConstructor> {
  if (!pkg) {
    const def = protoLoader.loadSync(path.join(PROTO_DIR, "rpc.proto"), { ...LOADER_OPTIONS, includeDirs: [PROTO_DIR] });
    pkg = (grpc.loadPackageDefinition(def) as any).etcdserverpb;
  }
  return pkg!;
}

export function rawClient(endpoint: string): RawClient {
  const options = { "grpc.max_receive_message_length": CLIENT_MESSAGE_BYTES_MAX, "grpc.max_send_message_length": CLIENT_MESSAGE_BYTES_MAX };
  const creds = grpc.credentials.createInsecure();
  const clients = new Map<Service, grpc.Client>();
  const client = (s: Service): any => {
    let c = clients.get(s);
    if (!c) {
      c = new (services()[s])(endpoint, creds, options);
      clients.set(s, c);
    }
    return c;
  };
  return {
    call(service, method, req) {
      return new Promise((resolve, reject) => {
        const c = client(service);
        if (typeof c[method] !== "function") throw new Error(`no method ${service}.${method}`);
        c[method](req, { deadline: Date.now() + CALL_DEADLINE_MS }, (e: grpc.ServiceError | null, r: Msg) => (e ? reject(e) : resolve(r)));
      });
    },
    close() {
      for (const c of clients.values()) c.close();
    },
  };
}

/** The gRPC status of a call that must fail: resolves to { code, details }, throws if it succeeded. */
export async function grpcError(p: Promise<unknown>): Promise<{ code: number; details: string }> {
  try {
    const r = await p;
    throw new Error(`expected a gRPC error, got a response: ${JSON.stringify(r).slice(0, 200)}`);
  } catch (e) {
    const err = e as Partial<grpc.ServiceError>;
    if (typeof err.code !== "number") throw e;
    return { code: err.code, details: err.details ?? "" };
  }
}

export const b = (s: string | Buffer): Buffer => (typeof s === "string" ? Buffer.from(s) : s);
