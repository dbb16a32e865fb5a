/**
 * Seeded randomness. Every random source in the labs draws from a seed, so a
 * lab gives the same numbers on every run of the same backend.
 *
 * `Random` is mulberry32 (a small, fast 32-bit generator with good
 * statistical quality for this use); `nextSeed()` hands out seeds for tfjs's
 * own seeded initialisers (`tf.randomNormal(..., seed)`).
 */
export class Random {
  private state: number;

  constructor(seed: number) {
    if (!Number.isFinite(seed)) throw new Error(`Random: seed must be a finite number, got ${seed}`);
    this.state = seed >>> 0;
  }

  /** Uniform in [0, 1). */
  next(): number {
    let t = (this.state = (this.state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** Integer in [low, high). */
  int(low: number, high: number): number {
    return low + Math.floor(this.next() * (high - low));
  }

  /** A seed for tfjs initialisers. */
  nextSeed(): number {
    return this.int(0, 2 ** 31 - 1);
  }

  /** A shuffled copy (Fisher–Yates). */
  shuffle<T>(items: readonly T[]): T[] {
    const out = items.slice();
    for (let i = out.length - 1; i > 0; i--) {
      const j = this.int(0, i + 1);
      [out[i], out[j]] = [out[j], out[i]];
    }
    return out;
  }
}
