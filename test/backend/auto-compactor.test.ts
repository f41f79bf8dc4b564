/**
 * Auto-compaction as etcd 3.4 runs it: the flags' parsing, and each mode's
 * schedule against a fake target on a fake clock.
 */
import { AutoCompactor, Compactable, REVISION_MODE_INTERVAL_MS, parseAutoCompaction } from "../../src/backend/auto-compactor";
import { MergekvError } from "../../src/errors";

const HOUR = 3_600_000;

/** A store whose revision grows with the fake clock: one revision per `msPerRevision`. */
class Target implements Compactable {
  readonly compactions: [atMs: number, rev: number][] = [];
  compactRev = 0;
  failNext = false;
  constructor(private readonly startMs: number, private readonly msPerRevision: number) {}

  get revision(): number {
    return 1 + Math.floor((Date.now() - this.startMs) / this.msPerRevision);
  }

  async compact(rev: number): Promise<void> {
    if (this.failNext) {
      this.failNext = false;
      throw new MergekvError("Unavailable", "disk on fire");
    }
    if (rev <= this.compactRev) throw new MergekvError("Compacted");
    this.compactRev = rev;
    this.compactions.push([Date.now() - this.startMs, rev]);
  }
}

describe("parseAutoCompaction (etcd's flag rules)", () => {
  test("periodic takes whole hours or a Go duration; revision a whole number; 0 is off", () => {
    expect(parseAutoCompaction("periodic", "0")).toBeNull();
    expect(parseAutoCompaction("revision", "0")).toBeNull();
    expect(parseAutoCompaction("periodic", "0s")).toBeNull();
    expect(parseAutoCompaction("periodic", "1")).toEqual({ mode: "periodic", retentionMs: HOUR });
    expect(parseAutoCompaction("periodic", "72")).toEqual({ mode: "periodic", retentionMs: 72 * HOUR });
    expect(parseAutoCompaction("periodic", "1h30m")).toEqual({ mode: "periodic", retentionMs: 1.5 * HOUR });
    expect(parseAutoCompaction("periodic", "5s")).toEqual({ mode: "periodic", retentionMs: 5_000 });
    expect(parseAutoCompaction("revision", "1000")).toEqual({ mode: "revision", retentionRevisions: 1000 });
  });

  test("an unknown mode and a bad retention are refused with what was given", () => {
    expect(() => parseAutoCompaction("hourly", "1")).toThrow(new MergekvError("InvalidArgument", 'unknown auto-compaction-mode "hourly"'));
    for (const bad of ["-1", "1x", "", "-5m"]) {
      expect(() => parseAutoCompaction("periodic", bad)).toThrow(`--auto-compaction-retention must be a duration such as 1h, 30m or 5s, or whole hours in periodic mode, got ${JSON.stringify(bad)}`);
    }
    for (const bad of ["1h", "-3", "1.5"]) {
      expect(() => parseAutoCompaction("revision", bad)).toThrow(`--auto-compaction-retention must be a whole number of revisions in revision mode, got ${JSON.stringify(bad)}`);
    }
  });
});

describe("AutoCompactor", () => {
  beforeEach(() => jest.useFakeTimers({ now: 1_000_000 }));
  afterEach(() => jest.useRealTimers());

  test("periodic, 10 s: nothing for the first 10 s, then every 10 s to the oldest sample kept (one retention before the last)", async () => {
    const target = new Target(Date.now(), 100); // 10 revisions a second
    const lines: string[] = [];
    const c = new AutoCompactor({ mode: "periodic", retentionMs: 10_000 }, target, (l) => lines.push(l));
    c.start();
    await jest.advanceTimersByTimeAsync(9_999);
    expect(target.compactions).toEqual([]);
    await jest.advanceTimersByTimeAsync(30_001);
    // A sample every 1 s, 11 kept (as etcd: retention / interval + 1). At 10 s the oldest is the one from 0 s
    // (revision 1); at 20 s the samples from 9 s to 19 s are kept, so the one from 9 s (revision 91); and so on.
    expect(target.compactions).toEqual([[10_000, 1], [20_000, 91], [30_000, 191], [40_000, 291]]);
    expect(lines.at(-1)).toBe("auto-compaction (periodic): compacted to revision 291");
    c.stop();
    await jest.advanceTimersByTimeAsync(60_000);
    expect(target.compactions).toHaveLength(4);
  });

  test("periodic, 3 h: first after 3 h, then every hour, each to the sample of 3 h before the last (every 6 min)", async () => {
    const target = new Target(Date.now(), 1_000);
    const c = new AutoCompactor({ mode: "periodic", retentionMs: 3 * HOUR }, target, () => undefined);
    c.start();
    await jest.advanceTimersByTimeAsync(5 * HOUR);
    const at = (ms: number) => 1 + ms / 1_000; // the revision at a time
    const MIN = 60_000;
    expect(target.compactions).toEqual([[3 * HOUR, 1], [4 * HOUR, at(54 * MIN)], [5 * HOUR, at(HOUR + 54 * MIN)]]);
    c.stop();
  });

  test("periodic: a failure is logged and tried again at the next sample; a revision already compacted counts as done", async () => {
    const target = new Target(Date.now(), 100);
    const lines: string[] = [];
    const c = new AutoCompactor({ mode: "periodic", retentionMs: 10_000 }, target, (l) => lines.push(l));
    c.start();
    target.failNext = true;
    await jest.advanceTimersByTimeAsync(10_000);
    expect(target.compactions).toEqual([]);
    expect(lines).toEqual(["auto-compaction (periodic) to revision 1 failed, tried again later: disk on fire"]);
    await jest.advanceTimersByTimeAsync(1_000);
    expect(target.compactions).toEqual([[11_000, 1]]);
    target.compactRev = 150; // a client compacted further meanwhile
    // At 21 s the oldest sample (10 s, revision 101) is already compacted: done, so the next comes at 31 s.
    // Had it been retried each second, the first revision above 150 (15 s's) would go at 26 s.
    await jest.advanceTimersByTimeAsync(20_000);
    expect(target.compactions).toEqual([[11_000, 1], [31_000, 201]]);
    c.stop();
  });

  test("revision, 1,000: every 5 minutes to the current revision - 1,000, when that is above 0 and moved", async () => {
    const target = new Target(Date.now(), 1_000); // 300 revisions per interval
    const c = new AutoCompactor({ mode: "revision", retentionRevisions: 1_000 }, target, () => undefined);
    c.start();
    await jest.advanceTimersByTimeAsync(3 * REVISION_MODE_INTERVAL_MS); // revision 901 at 15 min: nothing to compact
    expect(target.compactions).toEqual([]);
    await jest.advanceTimersByTimeAsync(2 * REVISION_MODE_INTERVAL_MS);
    expect(target.compactions).toEqual([[4 * REVISION_MODE_INTERVAL_MS, 201], [5 * REVISION_MODE_INTERVAL_MS, 501]]);
    c.stop();
  });

  test("revision: a revision that has not moved is not compacted again", async () => {
    const calls: number[] = [];
    const still: Compactable = { revision: 5_000, compact: async (rev) => void calls.push(rev) };
    const c = new AutoCompactor({ mode: "revision", retentionRevisions: 1_000 }, still, () => undefined);
    c.start();
    await jest.advanceTimersByTimeAsync(3 * REVISION_MODE_INTERVAL_MS);
    expect(calls).toEqual([4_000]);
    c.stop();
  });
});
