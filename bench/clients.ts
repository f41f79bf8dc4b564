/**
 * The operations the workloads issue, behind one interface, with three
 * implementations that send the same etcd v3 requests: a minimal gRPC client
 * on node:http2 ("h2", the default: the cheapest in client CPU), raw
 * @grpc/grpc-js stubs ("raw"), and the npm `etcd3` client ("etcd3"). The
 * ceiling phase measures what each costs.
 */
import { Etcd3 } from "etcd3";
import { ClientKind } from "./config";
import { rawKv, RawKv, Watchdog, services, Msg } from "./wire";
import { H2Channel } from "./h2";

/** A request that takes longer than this counts as an error (a hung server must not hang the run). */
export const REQUEST_TIMEOUT_MS = 30_000;

export interface KvClient {
  put(key: Buffer, value: Buffer): Promise<void>;
  /** Batch of puts in one Txn (bulk loading only): at most TXN_OPS_MAX. */
  putMany(keys: Buffer[], value: Buffer): Promise<void>;
  getSerializable(key: Buffer): Promise<void>;
  /** A linearizable read of the key's mod revision ("0" when absent). */
  modRevision(key: Buffer): Promise<string>;
  /** Txn: if mod_revision(key) == modRev then put. Resolves to whether it succeeded. */
  casPut(key: Buffer, modRev: string, value: Buffer): Promise<boolean>;
  close(): void;
}

/** etcd's default --max-txn-ops. */
export const TXN_OPS_MAX = 128;

export function makeClient(kind: ClientKind, endpoint: string): KvClient {
  switch (kind) {
    case "h2": return new H2Client(endpoint);
    case "raw": return new RawClient(endpoint);
    case "etcd3": return new Etcd3Client(endpoint);
  }
}

type Codec = { requestSerialize: (m: Msg) => Buffer; responseDeserialize: (b: Buffer) => Msg };

class H2Client implements KvClient {
  private readonly channel: H2Channel;
  private readonly put_ = codec("Put");
  private readonly range = codec("Range");
  private readonly txn = codec("Txn");

  constructor(endpoint: string) {
    this.channel = new H2Channel(endpoint, REQUEST_TIMEOUT_MS);
  }

  /** Responses the workload does not read are checked for status only, not decoded. */
  async put(key: Buffer, value: Buffer): Promise<void> {
    await this.channel.unary("/etcdserverpb.KV/Put", this.put_.requestSerialize({ key, value }));
  }

  async putMany(keys: Buffer[], value: Buffer): Promise<void> {
    if (keys.length > TXN_OPS_MAX) throw new Error(`putMany: ${keys.length} > ${TXN_OPS_MAX} ops`);
    await this.channel.unary("/etcdserverpb.KV/Txn", this.txn.requestSerialize({ compare: [], success: keys.map((key) => ({ request_put: { key, value } })), failure: [] }));
  }

  async getSerializable(key: Buffer): Promise<void> {
    await this.channel.unary("/etcdserverpb.KV/Range", this.range.requestSerialize({ key, serializable: true }));
  }

  async modRevision(key: Buffer): Promise<string> {
    const res = this.range.responseDeserialize(await this.channel.unary("/etcdserverpb.KV/Range", this.range.requestSerialize({ key })));
    return res.kvs?.[0]?.mod_revision ?? "0";
  }

  async casPut(key: Buffer, modRev: string, value: Buffer): Promise<boolean> {
    const req = { compare: [{ result: "Equal", target: "Mod", key, mod_revision: modRev }], success: [{ request_put: { key, value } }], failure: [] };
    return !!this.txn.responseDeserialize(await this.channel.unary("/etcdserverpb.KV/Txn", this.txn.requestSerialize(req))).succeeded;
  }

  close(): void {
    this.channel.close();
  }
}

function codec(method: string): Codec {
  return services().KV[method] as unknown as Codec;
}

class RawClient implements KvClient {
  private readonly kv: RawKv;
  private readonly watchdog = new Watchdog(REQUEST_TIMEOUT_MS);

  constructor(endpoint: string) {
    this.kv = rawKv(endpoint);
  }

  async put(key: Buffer, value: Buffer): Promise<void> {
    await this.watchdog.call(this.kv.Put, this.kv, { key, value });
  }

  async putMany(keys: Buffer[], value: Buffer): Promise<void> {
    if (keys.length > TXN_OPS_MAX) throw new Error(`putMany: ${keys.length} > ${TXN_OPS_MAX} ops`);
    await this.watchdog.call(this.kv.Txn, this.kv, { compare: [], success: keys.map((key) => ({ request_put: { key, value } })), failure: [] });
  }

  async getSerializable(key: Buffer): Promise<void> {
    await this.watchdog.call(this.kv.Range, this.kv, { key, serializable: true });
  }

  async modRevision(key: Buffer): Promise<string> {
    const res = await this.watchdog.call(this.kv.Range, this.kv, { key });
    return res.kvs?.[0]?.mod_revision ?? "0";
  }

  async casPut(key: Buffer, modRev: string, value: Buffer): Promise<boolean> {
    const res = await this.watchdog.call(this.kv.Txn, this.kv, {
      compare: [{ result: "Equal", target: "Mod", key, mod_revision: modRev }],
      success: [{ request_put: { key, value } }],
      failure: [],
    });
    return !!res.succeeded;
  }

  close(): void {
    this.watchdog.close();
    this.kv.close();
  }
}

/** A fault-handling policy that only calls through (what cockatiel's `noop` does), without importing cockatiel. */
const NEVER_ABORTED = new AbortController().signal;
const PASS_THROUGH = { execute: async (fn: (ctx: { signal: AbortSignal }) => unknown) => fn({ signal: NEVER_ABORTED }) } as never;

class Etcd3Client implements KvClient {
  private readonly etcd: Etcd3;

  constructor(endpoint: string) {
    this.etcd = new Etcd3({
      hosts: `http://${endpoint}`,
      // No retries or circuit breaker: every failure is counted, none is hidden.
      // No per-call deadline either (as for the raw client: in grpc-js it costs as much as the call);
      // a hung server fails the whole run through the runner's own time limit instead.
      faultHandling: { host: () => PASS_THROUGH, global: PASS_THROUGH },
    });
  }

  async put(key: Buffer, value: Buffer): Promise<void> {
    await this.etcd.put(key).value(value).exec();
  }

  async putMany(keys: Buffer[], value: Buffer): Promise<void> {
    if (keys.length > TXN_OPS_MAX) throw new Error(`putMany: ${keys.length} > ${TXN_OPS_MAX} ops`);
    await this.etcd.if(keys[0], "Version", ">", -1).then(...keys.map((k) => this.etcd.put(k).value(value))).commit();
  }

  async getSerializable(key: Buffer): Promise<void> {
    await this.etcd.get(key).serializable(true).exec();
  }

  async modRevision(key: Buffer): Promise<string> {
    const res = await this.etcd.get(key).exec();
    return res.kvs[0]?.mod_revision ?? "0";
  }

  async casPut(key: Buffer, modRev: string, value: Buffer): Promise<boolean> {
    const res = await this.etcd.if(key, "Mod", "==", modRev).then(this.etcd.put(key).value(value)).commit();
    return res.succeeded;
  }

  close(): void {
    this.etcd.close();
  }
}
