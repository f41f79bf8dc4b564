/**
 * Internal replication: a durable write is answered once `factor` frontends
 * have applied it. The frontend that executed it counts at once (it applied
 * the change before shipping it); the others count once they acknowledge
 * its revision. With the default of 1 a write returns as soon as it is
 * durable. The factor is --internal-replication at start and may be changed
 * while the server runs (`mergekv replication`).
 */
import { MergekvError } from "../errors";

export class InternalReplication {
  /** Per frontend, the revision it last said it applied. */
  private readonly watermarks: number[];
  /** Writes waiting for acknowledgements (bounded by the requests in flight). */
  private waiters: { rev: number; executor: number; resolve: () => void }[] = [];

  constructor(private readonly frontends: number, private factorNow: number, rev: number) {
    this.watermarks = new Array(frontends).fill(rev);
  }

  /** Frontends that must have applied a write before it is answered. */
  get factor(): number {
    return this.factorNow;
  }

  /**
   * Changes the factor until the server stops: writes waiting for more
   * frontends than the new factor asks are answered now; later writes wait
   * for the new number.
   */
  setFactor(k: number): void {
    if (!Number.isInteger(k) || k < 1 || k > this.frontends) {
      throw new MergekvError("InvalidArgument", `mergekv: internal replication must be between 1 and the number of frontends (${this.frontends}), got ${k}`);
    }
    this.factorNow = k;
    this.settle();
  }

  /** The revision each frontend has said it applied (sent with its next message, at once when the factor is above 1). */
  acknowledged(): readonly number[] {
    return this.watermarks.slice();
  }

  /** A frontend reports it has applied everything up to `rev`. */
  acknowledge(frontend: number, rev: number): void {
    if (rev > this.watermarks[frontend]) this.watermarks[frontend] = rev;
    this.settle();
  }

  /** Resolves once `factor` frontends have applied durable revision `rev`, counting `executor`, the frontend that executed the write. */
  whenReplicated(rev: number, executor: number): Promise<void> {
    if (this.replicated(rev, executor)) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ rev, executor, resolve }));
  }

  private settle(): void {
    if (this.waiters.length === 0) return;
    const still: typeof this.waiters = [];
    for (const w of this.waiters) {
      if (this.replicated(w.rev, w.executor)) w.resolve();
      else still.push(w);
    }
    this.waiters = still;
  }

  private replicated(rev: number, executor: number): boolean {
    let n = 0;
    for (let f = 0; f < this.watermarks.length; f++) if (f === executor || this.watermarks[f] >= rev) n++;
    return n >= this.factorNow;
  }
}
