import BTree from "sorted-btree";
import { KeyRange, Store, StoreOp } from "./store";
import { MergekvError } from "../errors";

const compareBuffers = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/** In-memory store for unit tests only (keys kept as latin1 strings: byte order). */
export class MemoryStore implements Store {
  private readonly map = new BTree<string, Buffer>(undefined, compareBuffers);
  private isOpen = false;

  async open(): Promise<void> { this.isOpen = true; }
  async close(): Promise<void> { this.isOpen = false; }

  private check() {
    if (!this.isOpen) throw new MergekvError("Unavailable", "store is not open");
  }

  async get(key: Buffer): Promise<Buffer | undefined> {
    this.check();
    const v = this.map.get(key.toString("latin1"));
    return v && Buffer.from(v);
  }

  async batch(ops: StoreOp[], _sync: boolean): Promise<void> {
    this.check();
    for (const op of ops) {
      if (op.type === "put" && !op.value) throw new MergekvError("InvalidArgument", "put without a value");
    }
    for (const op of ops) {
      const k = op.key.toString("latin1");
      if (op.type === "put") this.map.set(k, Buffer.from(op.value!));
      else this.map.delete(k);
    }
  }

  async *entries(range: KeyRange): AsyncIterable<[Buffer, Buffer]> {
    this.check();
    const lt = range.lt.toString("latin1");
    for (const [k, v] of this.map.entries(range.gte.toString("latin1"))) {
      if (k >= lt) return;
      yield [Buffer.from(k, "latin1"), Buffer.from(v)];
    }
  }

  async sizeBytes(): Promise<number> {
    let n = 0;
    this.map.forEach((v, k) => { n += k.length + v.length; });
    return n;
  }

  async reclaim(_range: KeyRange): Promise<void> {}
}
