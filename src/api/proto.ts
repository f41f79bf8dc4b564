/**
 * etcd's v3 service definitions, loaded at run time from the `etcd3`
 * package's proto files (never hand-copied), the Lock, Election and gRPC
 * health services, which that package lacks, declared here, and mergekv's
 * own Replication service.
 */
import * as protoLoader from "@grpc/proto-loader";
import * as protobuf from "protobufjs";
import * as path from "node:path";
import { ServiceDefinition } from "./grpc-server";
import { MethodDefinition } from "./grpc-call";

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
  Lock: ServiceDefinition;
  Election: ServiceDefinition;
  Health: ServiceDefinition;
  Replication: ServiceDefinition;
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
    Lock: serviceDefinition(etcdRoot(), "v3lockpb.Lock"),
    Election: serviceDefinition(etcdRoot(), "v3electionpb.Election"),
    Health: serviceDefinition(etcdRoot(), "grpc.health.v1.Health"),
    Replication: serviceDefinition(etcdRoot(), "mergekvpb.Replication"),
  };
}

/**
 * etcd's Lock and Election services. The `etcd3` package ships no proto
 * files for them, so their messages are declared here: the wire contract of
 * etcd 3.4's v3lock.proto and v3election.proto (the same packages, services,
 * field names and numbers, and the gateway's HTTP paths), written out.
 */
const LOCK_PROTO = `
syntax = "proto3";
package v3lockpb;
service Lock {
  rpc Lock(LockRequest) returns (LockResponse) { option (google.api.http) = { post: "/v3/lock/lock" body: "*" }; }
  rpc Unlock(UnlockRequest) returns (UnlockResponse) { option (google.api.http) = { post: "/v3/lock/unlock" body: "*" }; }
}
message LockRequest { bytes name = 1; int64 lease = 2; }
message LockResponse { etcdserverpb.ResponseHeader header = 1; bytes key = 2; }
message UnlockRequest { bytes key = 1; }
message UnlockResponse { etcdserverpb.ResponseHeader header = 1; }
`;

const ELECTION_PROTO = `
syntax = "proto3";
package v3electionpb;
service Election {
  rpc Campaign(CampaignRequest) returns (CampaignResponse) { option (google.api.http) = { post: "/v3/election/campaign" body: "*" }; }
  rpc Proclaim(ProclaimRequest) returns (ProclaimResponse) { option (google.api.http) = { post: "/v3/election/proclaim" body: "*" }; }
  rpc Leader(LeaderRequest) returns (LeaderResponse) { option (google.api.http) = { post: "/v3/election/leader" body: "*" }; }
  rpc Observe(LeaderRequest) returns (stream LeaderResponse) { option (google.api.http) = { post: "/v3/election/observe" body: "*" }; }
  rpc Resign(ResignRequest) returns (ResignResponse) { option (google.api.http) = { post: "/v3/election/resign" body: "*" }; }
}
message CampaignRequest { bytes name = 1; int64 lease = 2; bytes value = 3; }
message CampaignResponse { etcdserverpb.ResponseHeader header = 1; LeaderKey leader = 2; }
message LeaderKey { bytes name = 1; bytes key = 2; int64 rev = 3; int64 lease = 4; }
message LeaderRequest { bytes name = 1; }
message LeaderResponse { etcdserverpb.ResponseHeader header = 1; mvccpb.KeyValue kv = 2; }
message ResignRequest { LeaderKey leader = 1; }
message ResignResponse { etcdserverpb.ResponseHeader header = 1; }
message ProclaimRequest { LeaderKey leader = 1; bytes value = 2; }
message ProclaimResponse { etcdserverpb.ResponseHeader header = 1; }
`;

/** gRPC's standard health service (grpc/health/v1/health.proto), which etcd 3.4 registers too. */
const HEALTH_PROTO = `
syntax = "proto3";
package grpc.health.v1;
message HealthCheckRequest { string service = 1; }
message HealthCheckResponse {
  enum ServingStatus { UNKNOWN = 0; SERVING = 1; NOT_SERVING = 2; SERVICE_UNKNOWN = 3; }
  ServingStatus status = 1;
}
service Health {
  rpc Check(HealthCheckRequest) returns (HealthCheckResponse);
  rpc Watch(HealthCheckRequest) returns (stream HealthCheckResponse);
}
`;

/**
 * mergekv's own service (no etcd counterpart): the replication factors of a
 * running server, which `mergekv replication` reads and sets.
 */
const REPLICATION_PROTO = `
syntax = "proto3";
package mergekvpb;
service Replication {
  rpc Status(ReplicationStatusRequest) returns (ReplicationStatusResponse);
  rpc Set(ReplicationSetRequest) returns (ReplicationStatusResponse);
}
message ReplicationStatusRequest {}
// internal: 0 leaves it as it is. external: peer servers that must hold a write durably (0: none).
message ReplicationSetRequest { uint32 internal = 1; uint32 external = 2; }
message FrontendApplied { uint32 index = 1; string actor = 2; int64 revision = 3; }
message ReplicationStatusResponse {
  etcdserverpb.ResponseHeader header = 1;
  uint32 internal = 2;
  uint32 frontends = 3;
  uint32 external = 4;
  uint32 peers = 5;
  repeated FrontendApplied applied = 6;
}
`;

/** Requests as @grpc/proto-loader hands the other services theirs (proto.ts): int64 as strings, bytes as Buffers. */
const AS_OBJECT: protobuf.IConversionOptions = { longs: String, enums: String, bytes: Buffer, defaults: true, oneofs: true };

/** A service of `root` as the gRPC server takes it. */
function serviceDefinition(root: protobuf.Root, name: string): ServiceDefinition {
  const service = root.lookupService(name);
  const out: ServiceDefinition = {};
  for (const m of service.methodsArray) {
    const req = m.resolvedRequestType!;
    const res = m.resolvedResponseType!;
    const def: MethodDefinition = {
      path: `/${name}/${m.name}`,
      requestStream: !!m.requestStream,
      responseStream: !!m.responseStream,
      requestDeserialize: (b: Buffer) => req.toObject(req.decode(b), AS_OBJECT),
      responseSerialize: ((o: object) => Buffer.from(res.encode(res.fromObject(o)).finish())) as (message: never) => Buffer,
    };
    out[m.name] = def;
  }
  return out;
}


let root: protobuf.Root | null = null;

/** Every service etcd 3.4 serves (gRPC's health service included) and mergekv's Replication, as protobufjs reflection (names as in the files: keepCase); loaded once. */
export function etcdRoot(): protobuf.Root {
  if (!root) {
    const r = new protobuf.Root();
    r.loadSync(path.join(PROTO_DIR, "rpc.proto"), { keepCase: true });
    protobuf.parse(LOCK_PROTO, r, { keepCase: true });
    protobuf.parse(ELECTION_PROTO, r, { keepCase: true });
    protobuf.parse(HEALTH_PROTO, r, { keepCase: true });
    protobuf.parse(REPLICATION_PROTO, r, { keepCase: true });
    r.resolveAll();
    root = r;
  }
  return root;
}
