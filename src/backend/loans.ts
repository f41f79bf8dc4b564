/**
 * A frontend's loans: documents of buckets it does not own, borrowed from
 * the backend for the writes that need them, and kept loaded once their
 * loans end (LENT_KEPT_MAX, least recently borrowed freed first) with the
 * version the backend lent them at. A kept document is borrowed again by the
 * changes since that version (StoredDocs.lend) instead of a whole load.
 */
import { Handle, Loan } from "./stored-docs";

/**
 * Documents a frontend keeps loaded after their loans end, to borrow again
 * by the changes since; past it the least recently borrowed is freed. A
 * loaded document is about 12.5 KiB plus its history. Loading a borrowed
 * document whole made every multi-key Txn cost a load per foreign bucket,
 * growing with the document's history: a 10-key Txn repeated on the same
 * keys took 8 ms at first and 20 ms after 300 rounds (etcd: 1.4 ms).
 */
export const LENT_KEPT_MAX = 1_024;

/** A document on loan or kept, with the stored version it had when lent (the borrower's own writes since on top). */
interface Held {
  doc: Handle;
  version: number;
}

export class Loans {
  /** Documents on loan now, and how many requests hold each. */
  private readonly held = new Map<number, Held & { loans: number }>();
  /** Documents whose loans ended, by least recently borrowed first. */
  private readonly kept = new Map<number, Held>();
  /** Borrows so far that loaded a document from lent bytes, and those that took a kept one by the changes since. */
  readonly counts = { loaded: 0, kept: 0 };

  /** Whether the bucket's document is on loan here. */
  holds(bucket: number): boolean {
    return this.held.has(bucket);
  }

  /** The version of a kept document, -1 if none: what a fetch asks the changes since. */
  known(bucket: number): number {
    return this.kept.get(bucket)?.version ?? -1;
  }

  /**
   * Takes a loan: the document to write to, loaded from the saved bytes lent
   * (`load`), or the kept one with the changes since applied. Already on
   * loan: the held one stays (it has this actor's latest changes), with any
   * changes sent applied, and the loan is counted. Null: the loan sent
   * changes since a version no longer kept (evicted meanwhile), and the
   * caller fetches again.
   */
  take(loan: Loan, load: (bytes: Uint8Array | null) => Handle): Handle | null {
    const b = loan.bucket;
    const held = this.held.get(b);
    if (held) {
      held.loans++;
      if ("chunks" in loan && loan.since <= held.version) catchUp(held, loan);
      return held.doc;
    }
    const kept = this.kept.get(b);
    let doc: Handle;
    if ("chunks" in loan) {
      if (!kept || kept.version < loan.since) return null;
      this.kept.delete(b);
      catchUp(kept, loan);
      doc = kept.doc;
      this.counts.kept++;
    } else {
      if (kept) {
        kept.doc.free();
        this.kept.delete(b);
      }
      doc = load(loan.bytes);
      this.counts.loaded++;
    }
    this.held.set(b, { doc, loans: 1, version: loan.version });
    return doc;
  }

  /** Ends a loan; true when it was the last, and its document is now kept (or freed past LENT_KEPT_MAX). */
  end(bucket: number): boolean {
    const held = this.held.get(bucket);
    if (held === undefined) return false;
    if (held.loans > 1) {
      held.loans--;
      return false;
    }
    this.held.delete(bucket);
    this.kept.set(bucket, { doc: held.doc, version: held.version });
    if (this.kept.size > LENT_KEPT_MAX) {
      const [oldest, k] = this.kept.entries().next().value!;
      k.doc.free();
      this.kept.delete(oldest);
    }
    return true;
  }

  /** Frees the kept documents and forgets the loans (their documents are the caller's to free). */
  free(): void {
    for (const k of this.kept.values()) k.doc.free();
    this.kept.clear();
    this.held.clear();
  }
}

/** Applies a loan's chunks (some may be ours, or applied before: Automerge skips those). */
function catchUp(at: Held, loan: Loan & { chunks: Uint8Array[] }): void {
  if (loan.chunks.length > 0) {
    at.doc.applyChanges(loan.chunks);
    at.doc.updateDiffCursor();
  }
  at.version = Math.max(at.version, loan.version);
}
