/**
 * The operator commands' connection to a running server (`mergekv compact
 * --endpoints`, `mergekv replication`): one gRPC channel with etcdctl's TLS
 * and auth flags. A call names its service and method as the proto files do;
 * messages go through the same protobufjs reflection the server uses.
 */
import * as grpc from "@grpc/grpc-js";
import type * as protobuf from "protobufjs";
import { readFileSync } from "node:fs";
import { MergekvError } from "./errors";
import { etcdRoot } from "./api/proto";
import { Wire } from "./api/convert";

/** What an operator command's call may take at most: long enough for a compaction of a big data directory. */
export const ADMIN_CALL_TIMEOUT_MS = 10 * 60_000;

export interface AdminFlags {
  /** host:port, or an http:// or https:// URL (the first of a comma-separated list). */
  endpoints: string;
  /** etcdctl's --cacert, --cert and --key: TLS to the server (https:// or --cacert turns TLS on). */
  cacert?: string;
  cert?: string;
  key?: string;
  /** etcdctl's --user NAME[:PASSWORD] and --password. */
  user?: string;
  password?: string;
}

/** The flags as util.parseArgs options, for the commands that take them. */
export const ADMIN_OPTIONS = {
  endpoints: { type: "string" },
  cacert: { type: "string" },
  cert: { type: "string" },
  key: { type: "string" },
  user: { type: "string" },
  password: { type: "string" },
} as const;

/** Responses as the etcd3 client reads them: int64 as strings, enums by name, absent fields as their defaults. */
const READ_OPTIONS: protobuf.IConversionOptions = { longs: String, enums: String, defaults: true };

export class AdminClient {
  private readonly client: grpc.Client;
  private token: string | undefined;
  readonly target: string;

  constructor(private readonly flags: AdminFlags) {
    const first = flags.endpoints.split(",")[0].trim();
    const url = first.includes("://") ? first : `http://${first}`;
    let u: URL;
    try {
      u = new URL(url);
    } catch {
      throw new MergekvError("InvalidArgument", `--endpoints ${JSON.stringify(first)}: expected host:port or http(s)://host:port`);
    }
    if ((u.protocol !== "http:" && u.protocol !== "https:") || !u.port) throw new MergekvError("InvalidArgument", `--endpoints ${JSON.stringify(first)}: expected host:port or http(s)://host:port`);
    if (!!flags.cert !== !!flags.key) throw new MergekvError("InvalidArgument", "--cert and --key go together");
    const tls = u.protocol === "https:" || flags.cacert !== undefined;
    this.target = `${u.hostname}:${u.port}`;
    const credentials = tls
      ? grpc.credentials.createSsl(read(flags.cacert, "--cacert"), read(flags.key, "--key"), read(flags.cert, "--cert"))
      : grpc.credentials.createInsecure();
    this.client = new grpc.Client(this.target, credentials);
  }

  /** One unary call, e.g. `call("mergekvpb.Replication", "Status", {})`; authenticates first when --user is given. */
  async call(service: string, method: string, req: Wire): Promise<Wire> {
    if (this.flags.user !== undefined && this.token === undefined) this.token = await this.authenticate();
    return this.unary(service, method, req, this.token);
  }

  close(): void {
    this.client.close();
  }

  private async authenticate(): Promise<string> {
    const [name, ...rest] = this.flags.user!.split(":");
    const password = rest.length > 0 ? rest.join(":") : this.flags.password;
    if (password === undefined) throw new MergekvError("InvalidArgument", "--user NAME needs a password: --user NAME:PASSWORD or --password");
    const r = await this.unary("etcdserverpb.Auth", "Authenticate", { name, password }, undefined);
    return String(r.token);
  }

  private unary(service: string, method: string, req: Wire, token: string | undefined): Promise<Wire> {
    const m = etcdRoot().lookupService(service).methods[method];
    const requestType = m.resolvedRequestType!;
    const responseType = m.resolvedResponseType!;
    const metadata = new grpc.Metadata();
    if (token) metadata.set("token", token);
    return new Promise((resolve, reject) => {
      this.client.makeUnaryRequest(
        `/${service}/${method}`,
        (o: Wire) => Buffer.from(requestType.encode(requestType.fromObject(o)).finish()),
        (b: Buffer) => responseType.toObject(responseType.decode(b), READ_OPTIONS) as Wire,
        req,
        metadata,
        { deadline: Date.now() + ADMIN_CALL_TIMEOUT_MS },
        (e, r) => (e ? reject(new MergekvError("Unavailable", `${this.target}: ${e.details || e.message}`)) : resolve(r!)),
      );
    });
  }
}

function read(file: string | undefined, flag: string): Buffer | null {
  if (file === undefined) return null;
  try {
    return readFileSync(file);
  } catch (e) {
    throw new MergekvError("InvalidArgument", `${flag} ${file}: ${(e as Error).message}`);
  }
}
