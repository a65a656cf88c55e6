// Reading Prometheus text exposition (an agent's, a controller's or the
// kube-apiserver's /metrics) in tests: samples with their labels, and sums
// over the samples whose labels match.

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

const LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\d+)?$/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*,?/g;

function unescape(v: string): string {
  return v.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
}

/** Every sample of the exposition (comments and blank lines skipped). */
export function parseMetrics(text: string): Sample[] {
  const out: Sample[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const m = LINE.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(LABEL)) labels[l[1]!] = unescape(l[2]!);
    const v = m[3]!;
    out.push({ name: m[1]!, labels, value: v === '+Inf' ? Infinity : v === '-Inf' ? -Infinity : Number(v) });
  }
  return out;
}

/**
 * The sum of the samples named `name` whose labels match `want` (a string:
 * equal; an array: one of; absent labels do not match). 0 when none.
 */
export function sumMetric(samples: readonly Sample[], name: string, want: Record<string, string | readonly string[]> = {}): number {
  let sum = 0;
  for (const s of samples) {
    if (s.name !== name) continue;
    let ok = true;
    for (const [k, v] of Object.entries(want)) {
      const have = s.labels[k];
      if (have === undefined || (typeof v === 'string' ? have !== v : !v.includes(have))) {
        ok = false;
        break;
      }
    }
    if (ok) sum += s.value;
  }
  return sum;
}
