/**
 * Latency summaries and medians: pure functions over numbers.
 */

export interface LatencySummary {
  ops: number;
  opsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  meanMs: number;
  maxMs: number;
}

/** Nearest-rank percentile of an ascending array (NaN when empty). */
export function percentile(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.ceil((q / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))];
}

/** Summarizes latencies recorded over a window of `windowMs`. */
export function summarize(latencies: Float64Array, windowMs: number): LatencySummary {
  const sorted = Float64Array.from(latencies).sort();
  let sum = 0;
  for (const v of sorted) sum += v;
  return {
    ops: sorted.length,
    opsPerSec: windowMs > 0 ? sorted.length / (windowMs / 1000) : NaN,
    p50Ms: percentile(sorted, 50),
    p99Ms: percentile(sorted, 99),
    meanMs: sorted.length ? sum / sorted.length : NaN,
    maxMs: sorted.length ? sorted[sorted.length - 1] : NaN,
  };
}

/** Median of finite values (NaN when there are none); the mean of the middle two for an even count. */
export function median(values: number[]): number {
  const v = values.filter(Number.isFinite).sort((a, b) => a - b);
  if (v.length === 0) return NaN;
  const mid = Math.floor(v.length / 2);
  return v.length % 2 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
}

/** Concatenates typed arrays. */
export function concat(parts: Float64Array[]): Float64Array {
  const out = new Float64Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** The latencies of ops that started inside any of the [from, to) windows (absolute ms). */
export function latenciesWithin(starts: Float64Array, latencies: Float64Array, windows: [number, number][]): Float64Array {
  const out: number[] = [];
  for (let i = 0; i < starts.length; i++) {
    const s = starts[i];
    if (windows.some(([from, to]) => s >= from && s < to)) out.push(latencies[i]);
  }
  return Float64Array.from(out);
}
