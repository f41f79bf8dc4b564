/**
 * The fold thread (FoldWorker's other side): loads a stored bucket document
 * with its chunks and saves it again, so the backend's main thread does no
 * Automerge work for it.
 */
import { parentPort } from "node:worker_threads";
import { foldDocument } from "./stored-docs";
import type { FoldRequest, FoldResult } from "./fold-worker";

const port = parentPort!;

port.on("message", (m: FoldRequest) => {
  let result: FoldResult;
  try {
    const bytes = foldDocument(m.bytes, m.chunks);
    result = { id: m.id, bytes };
  } catch (e) {
    result = { id: m.id, bytes: null, error: (e as Error).message };
  }
  port.postMessage(result, result.bytes ? [result.bytes.buffer as ArrayBuffer] : []);
});
