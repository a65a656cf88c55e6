// What the fuzz tests share: the seed (PRPT_FUZZ_SEED, printed so a failure
// can be replayed) and a small seedable generator.

/** PRPT_FUZZ_SEED, or a new one per run */
export const FUZZ_SEED = Number(process.env.PRPT_FUZZ_SEED ?? Date.now() % 2 ** 31);

/** PRPT_FUZZ_ITERATIONS, or the file's own default */
export function fuzzIterations(fallback: number): number {
  return Number(process.env.PRPT_FUZZ_ITERATIONS ?? fallback);
}

/** mulberry32: small, seedable, good enough to drive mutations; floats in [0, 1) */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
