/**
 * Messages between the server's main thread and its frontend workers, as
 * discriminated unions on `type`. Each side batches what it sends in one
 * event-loop turn into one message (a postMessage costs far more than a field).
 */
import { Bootstrap, AppliedEntry } from "../backend/replica";
import { LeaseChange } from "../backend/leases";
import { Envelope } from "../backend/backend";
import { Loan } from "../backend/stored-docs";
import { KvRequest, KvResult } from "./requests";
import { EarlyReply } from "./executor";
import { WarmUpReport } from "./warm-up";
import { WireError } from "../errors";

export interface RequestItem {
  id: number;
  /** Revision a linearizable read must have applied. */
  minRev: number;
  request: KvRequest;
}

export type ResponseItem =
  | { id: number; ok: true; revision: number; result: KvResult }
  | { id: number; ok: false; error: WireError };

export type ToFrontend =
  /** `acknowledge`: report applied revisions even with no response to carry them (internal replication > 1). */
  | { type: "init"; index: number; frontends: number; acknowledge: boolean; txnOpsMax: number; bootstrap: Bootstrap }
  /**
   * `applied`: entries held back since the last message (see FrontendPool),
   * then `leases`: grants and revocations since the last message; both taken
   * before the items.
   */
  | { type: "requests"; items: RequestItem[]; leases?: LeaseChange[]; applied?: AppliedEntry[] }
  | { type: "applied"; entries: AppliedEntry[] }
  | { type: "compact"; rev: number }
  /** The internal replication factor changed (`mergekv replication`): report applied revisions at once (above 1) or with the next response. */
  | { type: "acknowledge"; on: boolean }
  /** Answer to a "fetch": each document's changes since the version asked, or its saved bytes. */
  | { type: "buckets"; id: number; loans: Loan[] }
  | { type: "stop" };

export type FromFrontend =
  | { type: "ready"; actor: string; rev: number; warmUp: WarmUpReport }
  /**
   * `replies`: results of some of these writes, due once they are durable.
   * `awaiting` (here and on responses): the frontend waits for applied
   * entries (Executor.awaitingApplied), so the pool posts them at once.
   */
  | { type: "envelopes"; items: Envelope[]; replies?: EarlyReply[]; awaiting: boolean }
  /** Borrow bucket documents this frontend does not own, each with the version it keeps, -1 if none (sent after every earlier envelope). */
  | { type: "fetch"; id: number; buckets: [number, number][] }
  /** `ack`: the frontend has applied everything up to this revision. */
  | { type: "responses"; ack: number; items: ResponseItem[]; awaiting: boolean }
  | { type: "fatal"; message: string };

/** Coalesces what one turn produces into one message. */
export class Outbox<T> {
  private items: T[] = [];
  private scheduled = false;

  constructor(private readonly flush: (items: T[]) => void) {}

  push(item: T): void {
    this.items.push(item);
    this.schedule(false);
  }

  /** Sends what is queued now, keeping order with messages posted next. */
  flushNow(): void {
    if (this.items.length === 0) return;
    const items = this.items;
    this.items = [];
    this.flush(items);
  }

  /** Sends on the next turn even if nothing was pushed (an acknowledgement carrier). */
  ping(): void {
    this.schedule(true);
  }

  private sendEmpty = false;

  private schedule(sendEmpty: boolean): void {
    if (sendEmpty) this.sendEmpty = true;
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => {
        this.scheduled = false;
        const items = this.items;
        this.items = [];
        if (items.length > 0 || this.sendEmpty) this.flush(items);
        this.sendEmpty = false;
      });
    }
  }
}
