/**
 * Drives a frontend Executor without a server: a fake backend gives each
 * envelope the next revision (one turn later, as the real one does) and hands
 * the entries back through onApplied; request builders fill etcd's defaults.
 */
import { Executor, Executed } from "../../src/frontend/executor";
import { Replica, AppliedEntry } from "../../src/backend/replica";
import { Envelope } from "../../src/backend/backend";
import { ActorId, KeyString, keyToString } from "../../src/persist/encoding";
import { KeyValue } from "../../src/backend/mvcc";
import {
  Compare, CompareResult, CompareTarget, DeleteRangeRequest, DeleteRangeResult, PutRequest, PutResult,
  RangeRequest, RangeResult, RequestOp, TxnRequest, TxnResult, putOf, rangeOf,
} from "../../src/frontend/requests";
import { MergekvError } from "../../src/errors";

export const FRONTEND_ACTOR = "f0".repeat(16) as ActorId;

export const key = (text: string): KeyString => keyToString(Buffer.from(text, "latin1"));
export const bytes = (text: string): Uint8Array => new Uint8Array(Buffer.from(text, "latin1"));
export const text = (b: Uint8Array): string => Buffer.from(b).toString("latin1");

/** A kv as etcd would print it: the fields tests compare. */
export function kvSummary(kv: KeyValue | undefined) {
  return kv && { key: kv.key, create: kv.create, mod: kv.mod, version: kv.version, value: text(kv.value), lease: kv.lease };
}

export class FakeBackend {
  readonly executor: Executor;
  /** Envelopes received: one per write request. */
  envelopes = 0;
  private rev = 0;
  private queue: Envelope[] = [];
  private scheduled = false;

  constructor() {
    // One frontend owning every bucket: it never borrows.
    this.executor = new Executor(new Replica(FRONTEND_ACTOR), (e) => this.receive(e), async () => {
      throw new Error("a frontend owning every bucket never borrows");
    });
  }

  get revision(): number {
    return this.rev;
  }

  private receive(envelope: Envelope): void {
    this.envelopes++;
    this.queue.push(envelope);
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      const entries: AppliedEntry[] = this.queue.splice(0).map((e) => ({ rev: ++this.rev, actor: e.actor, seq: e.seq, changes: e.changes, writes: e.writes }));
      this.executor.onApplied(entries);
    });
  }

  async range(k: string, options: RangeOptions = {}): Promise<Executed & { result: RangeResult }> {
    return (await this.executor.execute({ kind: "range", req: rangeRequest(k, options) }, this.rev)) as Executed & { result: RangeResult };
  }

  async put(k: string, value: string, options: Partial<PutRequest> = {}): Promise<Executed & { result: PutResult }> {
    return (await this.executor.execute({ kind: "put", req: putRequest(k, value, options) }, this.rev)) as Executed & { result: PutResult };
  }

  async deleteRange(k: string, rangeEnd = "", prevKv = false): Promise<Executed & { result: DeleteRangeResult }> {
    return (await this.executor.execute({ kind: "deleteRange", req: deleteRequest(k, rangeEnd, prevKv) }, this.rev)) as Executed & { result: DeleteRangeResult };
  }

  async txn(request: Partial<TxnRequest>): Promise<Executed & { result: TxnResult }> {
    const req = { compare: [], success: [], failure: [], ...request };
    return (await this.executor.execute({ kind: "txn", req }, this.rev)) as Executed & { result: TxnResult };
  }

  /** Writes each (key, value) with its own Put, in order. */
  async putAll(pairs: [string, string][]): Promise<void> {
    for (const [k, v] of pairs) await this.put(k, v);
  }
}

/** Range options with range_end as plain text ("" = the key alone, "\0" = from the key on). */
export type RangeOptions = Partial<Omit<RangeRequest, "key" | "rangeEnd">> & { rangeEnd?: string };

export function rangeRequest(k: string, options: RangeOptions = {}): RangeRequest {
  return rangeOf(key(k), { ...options, rangeEnd: key(options.rangeEnd ?? "") });
}

export function putRequest(k: string, value: string, options: Partial<PutRequest> = {}): PutRequest {
  return putOf(key(k), bytes(value), options);
}

export function deleteRequest(k: string, rangeEnd = "", prevKv = false): DeleteRangeRequest {
  return { key: key(k), rangeEnd: key(rangeEnd), prevKv };
}

export const op = {
  range: (k: string, options: RangeOptions = {}): RequestOp => ({ range: rangeRequest(k, options) }),
  put: (k: string, value: string, options: Partial<PutRequest> = {}): RequestOp => ({ put: putRequest(k, value, options) }),
  deleteRange: (k: string, rangeEnd = "", prevKv = false): RequestOp => ({ deleteRange: deleteRequest(k, rangeEnd, prevKv) }),
  txn: (request: Partial<TxnRequest>): RequestOp => ({ txn: { compare: [], success: [], failure: [], ...request } }),
};

/** A compare; the operand is a number for VERSION/CREATE/MOD/LEASE, a string for VALUE. */
export function compare(k: string, target: CompareTarget, result: CompareResult, operand: number | string, rangeEnd = ""): Compare {
  return {
    key: key(k), rangeEnd: key(rangeEnd), target, result,
    number: typeof operand === "number" ? operand : 0,
    value: typeof operand === "string" ? bytes(operand) : new Uint8Array(0),
  };
}

/** The code of the MergekvError the promise rejects with (fails the test if it resolves). */
export async function errorCode(promise: Promise<unknown>): Promise<string> {
  const error = await promise.then(() => new Error("expected a rejection, got a result"), (e: unknown) => e);
  if (!(error instanceof MergekvError)) throw error;
  return error.code;
}
