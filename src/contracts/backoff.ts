// Exponential backoff, the one rule every retry loop of the project follows:
// the wait after failure number n is initialMs × 2^(n−1), capped at maxMs,
// optionally spread by a random factor. Pure (the random source is passed
// in); the callers own their timers. A caller with more to say (webhook:
// Retry-After) adds it on top of backoffDelay().

export interface BackoffPolicy {
  /** the wait after the first failure */
  initialMs: number;
  /** no wait is longer (before jitter) */
  maxMs: number;
  /**
   * Multiplies the capped wait by a factor drawn uniformly from [min, max),
   * so many clients that failed together do not retry together. Without it
   * the wait is exact. `{min: 0.5, max: 1}` is "equal jitter" (never more
   * than the cap, never at once); `{min: 0.8, max: 1.2}` spreads ±20 %.
   */
  jitter?: { min: number; max: number };
}

/**
 * Past 2^52 every realistic initial delay is far beyond its cap; the clamp
 * only keeps the product finite (and 0 × ∞ out) for absurd failure counts.
 */
const MAX_DOUBLINGS = 52;

/**
 * The wait after failure number `attempt` (1 for the first; below 1 counts
 * as 1). `random` returns a number in [0, 1), as Math.random does.
 */
export function backoffDelay(attempt: number, policy: BackoffPolicy, random: () => number = Math.random): number {
  const doublings = Math.min(Math.max(attempt - 1, 0), MAX_DOUBLINGS);
  const exp = Math.min(policy.maxMs, policy.initialMs * 2 ** doublings);
  const j = policy.jitter;
  if (j === undefined) return exp;
  return exp * j.min + random() * (exp * (j.max - j.min));
}

/**
 * The same rule for a loop that keeps its own count: next() after each
 * failure, reset() after a success. With {initialMs: 500, maxMs: 30_000}
 * next() returns 500, 1000, 2000, … 30000, 30000, …
 */
export class Backoff {
  private readonly policy: BackoffPolicy;
  private readonly random: () => number;
  private count = 0;

  constructor(policy: BackoffPolicy, random: () => number = Math.random) {
    this.policy = policy;
    this.random = random;
  }

  /** failures counted since the last reset() */
  get failures(): number {
    return this.count;
  }

  /** Counts one more failure and returns the wait it earns. */
  next(): number {
    this.count++;
    return backoffDelay(this.count, this.policy, this.random);
  }

  /** The wait the next failure would earn, without counting it. */
  peek(): number {
    return backoffDelay(this.count + 1, this.policy, this.random);
  }

  reset(): void {
    this.count = 0;
  }
}
