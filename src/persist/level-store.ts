import { ClassicLevel } from "classic-level";
import { promises as fs } from "node:fs";
import * as path from "node:path";
import { KeyRange, Store, StoreOp } from "./store";
import { MergekvError } from "../errors";

/** The product's store: LevelDB (classic-level) in a directory on disk. */
export class LevelStore implements Store {
  private readonly db: ClassicLevel<Buffer, Buffer>;

  constructor(readonly dir: string) {
    this.db = new ClassicLevel<Buffer, Buffer>(dir, { keyEncoding: "buffer", valueEncoding: "buffer" });
  }

  async open(): Promise<void> {
    await fs.mkdir(this.dir, { recursive: true });
    try {
      await this.db.open();
    } catch (e) {
      const cause = (e as { cause?: Error }).cause;
      throw new MergekvError("Unavailable", `cannot open data directory ${this.dir}: ${cause?.message ?? (e as Error).message}`, e);
    }
  }

  close(): Promise<void> {
    return this.db.close();
  }

  get(key: Buffer): Promise<Buffer | undefined> {
    return this.db.get(key);
  }

  batch(ops: StoreOp[], sync: boolean): Promise<void> {
    return this.db.batch(ops as never, { sync });
  }

  async *entries(range: KeyRange): AsyncIterable<[Buffer, Buffer]> {
    for await (const entry of this.db.iterator({ gte: range.gte, lt: range.lt })) yield entry;
  }

  async sizeBytes(): Promise<number> {
    let total = 0;
    for (const name of await fs.readdir(this.dir)) {
      const st = await fs.stat(path.join(this.dir, name)).catch(() => undefined);
      if (st?.isFile()) total += st.size;
    }
    return total;
  }

  reclaim(range: KeyRange): Promise<void> {
    return this.db.compactRange(range.gte, range.lt);
  }
}
