// The real-world corpus score (test/fixtures/real-world): how many real
// storage lines, as users pasted them and as bare kernel messages, give the
// event they should, and how many unrelated lines give one (false positives).
// Prints numbers; the goal (≥ 95% as pasted, ≥ 97% bare, 0 false positives,
// 0 wrong system/device) is held by test/unit/real-world-corpus.test.ts.
import { loadCorpus, scoreCorpus } from '../test/helpers/real-world.ts';

const entries = loadCorpus();
const t0 = performance.now();
const s = scoreCorpus(entries);
const ms = performance.now() - t0;
const pct = (a: number, b: number): string => (b === 0 ? '-' : `${((100 * a) / b).toFixed(1)}%`);
console.log(`real-world corpus: ${entries.length} lines from ${new Set(entries.map((e) => e.source)).size} sources`);
console.log(`  storage lines giving their event, as pasted: ${s.hitAsPasted}/${s.storage} = ${pct(s.hitAsPasted, s.storage)}`);
console.log(`  the same as bare kernel messages:            ${s.hitBare}/${s.storage} = ${pct(s.hitBare, s.storage)}`);
console.log(`  system or device wrong where an event was made: ${s.wrongIdentity.length}`);
console.log(`  severity as labelled where an event was made: ${s.severityAgrees}/${s.hitAsPasted} = ${pct(s.severityAgrees, s.hitAsPasted)}`);
console.log(`  false positives on ${s.nonStorage} non-storage lines: ${s.falsePositives.length}`);
console.log(`  storage context lines (no event of their own) that alone make one: ${s.contextWithEvent}/${s.context}`);
console.log(`  scored in ${ms.toFixed(0)} ms`);
