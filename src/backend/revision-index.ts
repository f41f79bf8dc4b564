import { assert } from "../errors";

/**
 * The keys each revision wrote, from `first` on: one slot per revision
 * holding its key, or the keys of a multi-key Txn. A watch catching up over
 * a range reads the revisions it covers instead of every key in the range:
 * with 100,000 keys under a prefix, a watch 50,000 revisions behind held the
 * main thread for 544 ms scanning every key's history per batch
 * (REDESIGN.md, "Watch"). About 8 bytes per revision since the compact
 * revision, beside the history entry each revision already has.
 */
export class RevisionIndex {
  /** The revision of slots[0]. */
  private base = 0;
  private slots: (string | string[] | undefined)[] = [];

  get first(): number {
    return this.base;
  }

  startAt(rev: number): void {
    assert(this.slots.length === 0, "the revision index starts before anything is indexed");
    this.base = rev;
  }

  /** Records that `rev` wrote `key` (once per key and revision); below `first`: compacted, ignored. */
  add(rev: number, key: string): void {
    const i = rev - this.base;
    if (i < 0) return;
    while (this.slots.length <= i) this.slots.push(undefined); // packed, not holey: revisions are dense
    const s = this.slots[i];
    if (s === undefined) this.slots[i] = key;
    else if (typeof s === "string") this.slots[i] = [s, key];
    else s.push(key);
  }

  at(rev: number): string | readonly string[] | undefined {
    return this.slots[rev - this.base];
  }

  /** Compaction to `rev`: revisions below it are no longer read. */
  dropBelow(rev: number): void {
    if (rev <= this.base) return;
    this.slots = this.slots.slice(Math.min(rev - this.base, this.slots.length));
    this.base = rev;
  }
}
