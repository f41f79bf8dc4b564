/**
 * etcd's v3 service definitions, loaded at run time from the `etcd3`
 * package's proto files (never hand-copied), with each request's wire size
 * remembered for etcd's size limits.
 */
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import * as path from "node:path";

const PROTO_DIR = path.dirname(require.resolve("etcd3/proto/rpc.proto"));

/** The options the etcd3 client itself uses: enums as their CamelCase names, int64 as strings. */
const LOADER_OPTIONS: protoLoader.Options = { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true };

const wireSize = new WeakMap<object, number>();

/** Bytes the request had on the wire (0 if unknown). */
export function requestBytes(req: object): number {
  return wireSize.get(req) ?? 0;
}

export interface EtcdServices {
  KV: grpc.ServiceDefinition;
  Watch: grpc.ServiceDefinition;
  Lease: grpc.ServiceDefinition;
  Cluster: grpc.ServiceDefinition;
  Maintenance: grpc.ServiceDefinition;
  Auth: grpc.ServiceDefinition;
}

export function loadServices(): EtcdServices {
  const def = protoLoader.loadSync(path.join(PROTO_DIR, "rpc.proto"), { ...LOADER_OPTIONS, includeDirs: [PROTO_DIR] });
  const pkg = grpc.loadPackageDefinition(def) as unknown as { etcdserverpb: Record<string, { service: grpc.ServiceDefinition }> };
  const service = (name: string) => measured(pkg.etcdserverpb[name].service);
  return {
    KV: service("KV"),
    Watch: service("Watch"),
    Lease: service("Lease"),
    Cluster: service("Cluster"),
    Maintenance: service("Maintenance"),
    Auth: service("Auth"),
  };
}

/**
 * Wraps each method's deserializer to record the message's size, and its
 * serializer to send a Buffer as it is: an already-encoded response (the
 * watch fan-out encodes an event once for all its watchers).
 */
function measured(service: grpc.ServiceDefinition): grpc.ServiceDefinition {
  const out: Record<string, grpc.MethodDefinition<object, object>> = {};
  for (const [name, method] of Object.entries(service)) {
    const deserialize = method.requestDeserialize;
    const serialize = method.responseSerialize;
    out[name] = {
      ...method,
      requestDeserialize: (buf: Buffer) => {
        const req = deserialize(buf) as object;
        wireSize.set(req, buf.length);
        return req;
      },
      responseSerialize: (res: object) => (Buffer.isBuffer(res) ? res : serialize(res)),
    };
  }
  return out as grpc.ServiceDefinition;
}
