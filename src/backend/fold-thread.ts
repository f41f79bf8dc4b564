/**
 * The fold thread (FoldWorker's other side): loads a stored bucket document
 * with its chunks and saves it again, so the backend's main thread does no
 * Automerge work for it.
 */
import { parentPort } from "node:worker_threads";
import { tryFold } from "./stored-docs";
import type { FoldRequest, FoldResult } from "./fold-worker";

const port = parentPort!;

port.on("message", (m: FoldRequest) => {
  const result: FoldResult = { id: m.id, ...tryFold(m.bytes, m.chunks) };
  port.postMessage(result, result.bytes ? [result.bytes.buffer as ArrayBuffer] : []);
});
