import { promises as fs } from "node:fs";
import { LevelStore } from "../../src/persist/level-store";
import { MergekvError } from "../../src/errors";
import { tempDir } from "../helpers/server";
import { runStoreContract, StoreUnderTest } from "./store.contract";

/** A LevelStore in a fresh temporary directory; reopening makes a new LevelStore over it. */
async function makeLevelStore(): Promise<StoreUnderTest & { dir: string }> {
  const dir = await tempDir("mergekv-level-store-");
  let store = new LevelStore(dir);
  await store.open();
  return {
    dir,
    get store() {
      return store;
    },
    reopen: async () => {
      await store.close();
      store = new LevelStore(dir);
      await store.open();
      return store;
    },
    dispose: async () => {
      await store.close();
      await fs.rm(dir, { recursive: true, force: true });
    },
  };
}

runStoreContract("LevelStore", makeLevelStore);

describe("LevelStore", () => {
  test("a directory held open by another LevelStore is Unavailable, naming the directory", async () => {
    const subject = await makeLevelStore();
    const error = await new LevelStore(subject.dir).open().then(() => undefined, (e: unknown) => e);
    await subject.dispose();
    expect(error).toBeInstanceOf(MergekvError);
    expect((error as MergekvError).code).toBe("Unavailable");
    expect((error as MergekvError).message).toContain(subject.dir);
  });
});
