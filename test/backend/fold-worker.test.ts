import * as path from "node:path";
import { BucketSet } from "../../src/backend/buckets";
import { FOLD_AT } from "../../src/backend/stored-docs";
import { FoldWorker, mainThreadFolder } from "../../src/backend/fold-worker";
import { ActorId, KeyString, keyToString } from "../../src/persist/encoding";

/** The thread runs the built script (ts-jest has no fold-thread.js beside the source). */
const SCRIPT = path.join(__dirname, "..", "..", "dist", "src", "backend", "fold-thread.js");

test("the fold thread folds a stored document: the backend's set keeps every value and never loads it", async () => {
  const lost: string[] = [];
  const logged: string[] = [];
  const folds = new FoldWorker((why) => lost.push(why), (line) => logged.push(line), SCRIPT);
  try {
    const author = new BucketSet("aa".repeat(16) as ActorId);
    const key = keyToString(Buffer.from("fold-key")) as KeyString;
    const stored = new BucketSet("bb".repeat(16) as ActorId, undefined, false);
    let pending = 0; // the thread's folds, counted to wait for them
    const folded = new Promise<void>((resolve) => {
      stored.foldWith((bytes, chunks, done) => { pending++; folds.fold(bytes, chunks, (b) => { done(b); if (--pending === 0) resolve(); }); });
    });
    for (let i = 1; i <= FOLD_AT; i++) {
      author.put(key, Buffer.from(`v${i}`));
      stored.applyRemote(author.commit());
    }
    const held = stored.chunkBytesHeld;
    await folded;
    expect(stored.chunkBytesHeld).toBeLessThan(held);
    expect(stored.loads).toBe(0);
    const fresh = new BucketSet("cc".repeat(16) as ActorId);
    const bucket = [...stored.present()][0];
    fresh.load(bucket, stored.save(bucket)!);
    expect(Buffer.from(fresh.get(key)!).toString()).toBe(`v${FOLD_AT}`);
    expect(lost).toEqual([]);
    expect(logged).toEqual([]);
  } finally {
    await folds.stop();
  }
});

test("folds on the main thread (after the thread is lost) fail as the thread's do: logged, reported as null, nothing thrown", () => {
  const logged: string[] = [];
  const fold = mainThreadFolder((line) => logged.push(line));
  const results: (Uint8Array | null)[] = [];
  fold(new Uint8Array(Buffer.from("not a document")), [], (b) => results.push(b));
  expect(results).toEqual([null]);
  expect(logged).toHaveLength(1);
  expect(logged[0]).toMatch(/^fold failed: /);

  const author = new BucketSet("aa".repeat(16) as ActorId);
  const key = keyToString(Buffer.from("main-fold")) as KeyString;
  author.put(key, Buffer.from("v1"));
  const [change] = author.commit();
  fold(null, [change.bytes], (b) => results.push(b));
  const fresh = new BucketSet("cc".repeat(16) as ActorId);
  fresh.load(change.bucket, results[1]!);
  expect(Buffer.from(fresh.get(key)!).toString()).toBe("v1");
  expect(logged).toHaveLength(1);
});
