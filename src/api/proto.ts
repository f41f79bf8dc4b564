/**
 * etcd's v3 service definitions, loaded at run time from the `etcd3`
 * package's proto files (never hand-copied).
 */
import * as protoLoader from "@grpc/proto-loader";
import * as path from "node:path";
import { ServiceDefinition } from "./grpc-server";

/** Where the `etcd3` package keeps etcd's proto files. */
export const PROTO_DIR = path.dirname(require.resolve("etcd3/proto/rpc.proto"));

/** The options the etcd3 client itself uses: enums as their CamelCase names, int64 as strings. */
const LOADER_OPTIONS: protoLoader.Options = { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true };

export interface EtcdServices {
  KV: ServiceDefinition;
  Watch: ServiceDefinition;
  Lease: ServiceDefinition;
  Cluster: ServiceDefinition;
  Maintenance: ServiceDefinition;
  Auth: ServiceDefinition;
}

export function loadServices(): EtcdServices {
  const def = protoLoader.loadSync(path.join(PROTO_DIR, "rpc.proto"), { ...LOADER_OPTIONS, includeDirs: [PROTO_DIR] });
  const service = (name: string) => def[`etcdserverpb.${name}`] as unknown as ServiceDefinition;
  return {
    KV: service("KV"),
    Watch: service("Watch"),
    Lease: service("Lease"),
    Cluster: service("Cluster"),
    Maintenance: service("Maintenance"),
    Auth: service("Auth"),
  };
}
