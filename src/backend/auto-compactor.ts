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

export interface AutoCompaction {
  mode: AutoCompactionMode;
  /** Periodic: ms of history kept. Revision: revisions kept. */
  retention: number;
}

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
  return n === 0 ? null : { mode, retention: n };
}

export class AutoCompactor {
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;
  /** Periodic: revisions sampled, oldest first; the first is the one from the retention ago. */
  private samples: number[] = [];
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
    if (this.setting.mode === "revision") {
      this.schedule(REVISION_MODE_INTERVAL_MS, () => this.revisionRound());
      return;
    }
    this.lastDoneMs = this.now();
    this.waitMs = this.setting.retention;
    this.sample();
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

  private get sampleEveryMs(): number {
    return Math.min(this.setting.retention, PERIODIC_INTERVAL_MAX_MS) / SAMPLES_PER_INTERVAL;
  }

  /** Periodic: records the revision now (keeping one retention's worth), then checks after one sample interval. */
  private sample(): void {
    this.samples.push(this.target.revision);
    const kept = Math.floor(this.setting.retention / this.sampleEveryMs) + 1;
    if (this.samples.length > kept) this.samples.shift();
    this.schedule(this.sampleEveryMs, () => this.periodicRound());
  }

  private async periodicRound(): Promise<void> {
    if (this.now() - this.lastDoneMs >= this.waitMs) {
      this.waitMs = Math.min(this.setting.retention, PERIODIC_INTERVAL_MAX_MS);
      if (await this.compactTo(this.samples[0])) this.lastDoneMs = this.now();
    }
    this.sample();
  }

  private async revisionRound(): Promise<void> {
    const rev = this.target.revision - this.setting.retention;
    if (rev > 0 && rev !== this.lastRevision && (await this.compactTo(rev))) this.lastRevision = rev;
    this.schedule(REVISION_MODE_INTERVAL_MS, () => this.revisionRound());
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
