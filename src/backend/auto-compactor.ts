/**
 * etcd's auto-compaction (`--auto-compaction-mode`, `--auto-compaction-retention`)
 * of the MVCC history, as etcd 3.4 runs it (etcdserver/api/v3compactor):
 *  - revision mode, retention N revisions: every 5 minutes, compact to the
 *    current revision - N, when that is above 0 and has moved since the last
 *    compaction;
 *  - periodic mode, retention a duration P: the current revision is sampled
 *    every min(P, 1 h) / 10; once P has passed since the start (after that,
 *    every min(P, 1 h)), compact to the revision sampled P ago.
 * A revision already compacted counts as done; a failure is logged and
 * tried again at the next sample. Without it the history grows until a
 * client calls Compact (etcd's default too: retention "0").
 */
import { MergekvError, isMergekvError } from "../errors";
import { parseGoDuration } from "./go-duration";

export type AutoCompactionMode = "periodic" | "revision";

/** What auto-compaction keeps: a time's worth of history, or a number of revisions. */
export type AutoCompaction = { mode: "periodic"; retentionMs: number } | { mode: "revision"; retentionRevisions: number };

/** What the compactor compacts: the server's backend. */
export interface Compactable {
  /** The newest durable revision. */
  readonly revision: number;
  /** etcd Compact; throws Compacted for a revision at or below the compact revision. */
  compact(rev: number): Promise<void>;
}

/** etcd's interval of revision mode. */
export const REVISION_MODE_INTERVAL_MS = 5 * 60_000;
/** Periodic mode compacts at most this far apart (and samples ten times as often). */
export const PERIODIC_INTERVAL_MAX_MS = 60 * 60_000;
const SAMPLES_PER_INTERVAL = 10;
const HOUR_MS = 3_600_000;

/**
 * The flags as etcd reads them: an integer retention is revisions (revision
 * mode) or hours (periodic); periodic also takes a Go duration ("30m",
 * "1h30m"). "0" (etcd's default) turns auto-compaction off: null.
 */
export function parseAutoCompaction(mode: string, retention: string): AutoCompaction | null {
  if (mode !== "periodic" && mode !== "revision") throw new MergekvError("InvalidArgument", `unknown auto-compaction-mode ${JSON.stringify(mode)}`);
  const whole = /^\d+$/.test(retention) ? Number(retention) : undefined;
  const n = whole !== undefined ? (mode === "periodic" ? whole * HOUR_MS : whole) : mode === "periodic" ? parseGoDuration(retention) : undefined;
  if (n === undefined || !Number.isSafeInteger(Math.round(n)) || n < 0) {
    const what = mode === "periodic" ? "a duration such as 1h, 30m or 5s, or whole hours" : "a whole number of revisions";
    throw new MergekvError("InvalidArgument", `--auto-compaction-retention must be ${what} in ${mode} mode, got ${JSON.stringify(retention)}`);
  }
  if (n === 0) return null;
  return mode === "periodic" ? { mode, retentionMs: n } : { mode, retentionRevisions: n };
}

export class AutoCompactor {
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;
  /** Periodic: revisions sampled, oldest first; the first is the one from the retention ago. */
  private samples: number[] = [];
  /** Periodic: when the last compaction was done, and how long after it the next is due (the retention at first, then min(retention, 1 h)). */
  private lastDoneMs = 0;
  private waitMs = 0;
  /** Revision mode: the last revision compacted to. */
  private lastRevision = 0;

  constructor(
    readonly setting: AutoCompaction,
    private readonly target: Compactable,
    private readonly log: (line: string) => void,
    private readonly now: () => number = Date.now,
  ) {}

  /** Starts the schedule (the first compaction comes one retention or one 5-minute interval from now). */
  start(): void {
    const s = this.setting;
    if (s.mode === "revision") {
      this.schedule(REVISION_MODE_INTERVAL_MS, () => this.revisionRound(s.retentionRevisions));
      return;
    }
    this.lastDoneMs = this.now();
    this.waitMs = s.retentionMs;
    this.sample(s.retentionMs);
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  private schedule(ms: number, then: () => Promise<void>): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => void then(), ms);
    this.timer.unref();
  }

  /** Periodic: records the revision now (keeping one retention's worth), then checks after one sample interval. */
  private sample(retentionMs: number): void {
    const intervalMs = Math.min(retentionMs, PERIODIC_INTERVAL_MAX_MS);
    const sampleEveryMs = intervalMs / SAMPLES_PER_INTERVAL;
    this.samples.push(this.target.revision);
    if (this.samples.length > Math.floor(retentionMs / sampleEveryMs) + 1) this.samples.shift();
    this.schedule(sampleEveryMs, async () => {
      if (this.now() - this.lastDoneMs >= this.waitMs) {
        this.waitMs = intervalMs;
        if (await this.compactTo(this.samples[0])) this.lastDoneMs = this.now();
      }
      this.sample(retentionMs);
    });
  }

  private async revisionRound(retentionRevisions: number): Promise<void> {
    const rev = this.target.revision - retentionRevisions;
    if (rev > 0 && rev !== this.lastRevision && (await this.compactTo(rev))) this.lastRevision = rev;
    this.schedule(REVISION_MODE_INTERVAL_MS, () => this.revisionRound(retentionRevisions));
  }

  /** Compacts; true when done (or already done: Compacted). */
  private async compactTo(rev: number): Promise<boolean> {
    if (this.stopped) return false;
    try {
      await this.target.compact(rev);
      this.log(`auto-compaction (${this.setting.mode}): compacted to revision ${rev}`);
      return true;
    } catch (e) {
      if (isMergekvError(e) && e.code === "Compacted") return true;
      this.log(`auto-compaction (${this.setting.mode}) to revision ${rev} failed, tried again later: ${(e as Error).message}`);
      return false;
    }
  }
}
