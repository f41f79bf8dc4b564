/**
 * Seeds for randomized tests. Every randomized test takes its seed from here,
 * which prints it; set MERGEKV_TEST_SEED to replay a failing run exactly.
 */
import fc from "fast-check";

export function chooseSeed(label: string): number {
  const fromEnvironment = process.env.MERGEKV_TEST_SEED;
  const seed = fromEnvironment !== undefined ? Number(fromEnvironment) : (Date.now() ^ Math.floor(Math.random() * 0x7fffffff)) | 0;
  console.log(`seed for "${label}": ${seed} (replay with MERGEKV_TEST_SEED=${seed})`);
  return seed;
}

/** fc.assert with a printed seed. */
export function assertProperty<T>(label: string, property: fc.IProperty<T>, parameters: fc.Parameters<T> = {}): void {
  fc.assert(property, { ...parameters, seed: chooseSeed(label) });
}

/** fc.assert for async properties, with a printed seed. */
export async function assertAsyncProperty<T>(label: string, property: fc.IAsyncProperty<T>, parameters: fc.Parameters<T> = {}): Promise<void> {
  await fc.assert(property, { ...parameters, seed: chooseSeed(label) });
}

/** A small seeded PRNG (mulberry32) for hand-written randomized tests. */
export class SeededRandom {
  private state: number;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  /** Uniform in [0, 1). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** Uniform integer in [0, bound). */
  below(bound: number): number {
    return Math.floor(this.next() * bound);
  }

  pick<T>(items: readonly T[]): T {
    return items[this.below(items.length)];
  }
}
