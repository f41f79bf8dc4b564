/**
 * Runs the backend's folds on a thread of its own (see FOLD_AT in
 * stored-docs.ts). A fold loads a whole bucket document and saves it again: in
 * steady lease churn that was about 10% of the main thread, the last
 * Automerge work it did on the write path. If the thread fails, folds run on
 * the main thread again, as without it.
 */
import { Worker } from "node:worker_threads";
import * as path from "node:path";
import { Folder, tryFold } from "./stored-docs";

export interface FoldRequest {
  id: number;
  bytes: Uint8Array | null;
  chunks: Uint8Array[];
}

export interface FoldResult {
  id: number;
  bytes: Uint8Array | null;
  error?: string;
}

export class FoldWorker {
  private worker: Worker | null;
  private readonly waiting = new Map<number, (folded: Uint8Array | null) => void>();
  private nextId = 1;

  /**
   * `onLost`: the thread failed; folds go back to the main thread (the caller
   * unsets the folder). `log`: a fold that failed (the document stays as it
   * was; StoredDocs tries again later).
   */
  constructor(private readonly onLost: (why: string) => void, private readonly log: (line: string) => void, script = path.join(__dirname, "fold-thread.js")) {
    const w = new Worker(script);
    this.worker = w;
    w.unref(); // never what keeps the process alive
    w.on("message", (r: FoldResult) => {
      if (r.error !== undefined) logFoldFailure(this.log, r.error);
      const done = this.waiting.get(r.id);
      this.waiting.delete(r.id);
      done?.(r.bytes);
    });
    w.on("error", (e: Error) => this.lose(`fold thread failed: ${e.message}`));
    w.on("exit", (code) => this.lose(`fold thread exited with code ${code}`));
  }

  /** The Folder to give the backend's buckets. */
  readonly fold: Folder = (bytes, chunks, done) => {
    if (!this.worker) return done(null);
    const id = this.nextId++;
    this.waiting.set(id, done);
    this.worker.postMessage({ id, bytes, chunks } satisfies FoldRequest);
  };

  private lose(why: string): void {
    if (!this.worker) return;
    this.detach();
    this.onLost(why);
  }

  async stop(): Promise<void> {
    await this.detach()?.terminate();
  }

  /** Stops using the thread: folds under way report failure (their documents stay as they were). */
  private detach(): Worker | null {
    const w = this.worker;
    this.worker = null;
    for (const done of this.waiting.values()) done(null);
    this.waiting.clear();
    return w;
  }
}

function logFoldFailure(log: (line: string) => void, error: string): void {
  log(`fold failed: ${error}`);
}

/**
 * Folds on the calling thread, as the fold thread does: a failure is logged
 * and reported as null (the document stays as it was, and StoredDocs tries
 * again later), so losing the thread does not change what a failed fold does.
 */
export function mainThreadFolder(log: (line: string) => void): Folder {
  return (bytes, chunks, done) => {
    const r = tryFold(bytes, chunks);
    if (r.error !== undefined) logFoldFailure(log, r.error);
    done(r.bytes);
  };
}
