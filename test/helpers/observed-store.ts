/** A store wrapper that records batches and can be told to fail or hold them (for persistence tests). */
import { KeyRange, Store, StoreOp } from "../../src/persist/store";

export class ObservedStore implements Store {
  readonly batches: StoreOp[][] = [];
  failWhen: (ops: StoreOp[]) => boolean = () => false;
  gate: Promise<void> = Promise.resolve();

  constructor(private readonly inner: Store) {}

  open() { return this.inner.open(); }
  close() { return this.inner.close(); }
  get(k: Buffer) { return this.inner.get(k); }
  entries(range: KeyRange) { return this.inner.entries(range); }
  sizeBytes() { return this.inner.sizeBytes(); }
  reclaim(range: KeyRange) { return this.inner.reclaim(range); }

  async batch(ops: StoreOp[], sync: boolean): Promise<void> {
    this.batches.push([...ops]);
    await this.gate;
    if (this.failWhen(ops)) throw new Error("injected write failure");
    return this.inner.batch(ops, sync);
  }
}
