// Benchmark (npm run bench): peripety's parsing pipeline side by side with
// node-problem-detector's kernel monitor, on the same records in the same
// run (issue 14: the ratio, goal ≥ 3×). docs/performance.md, "Compared with
// node-problem-detector", says what each side does per record.
//
// The corpus: every line of the real-world corpus (test/fixtures/real-world),
// its bare kernel message as a raw /dev/kmsg record, written once to a
// temporary file that both sides read before their timed part. NPD's side is
// bench/lib/npd-harness.go built by hack/npd-build.sh (Go module proxy, the
// project's Go cache); without Go or the module this prints SKIPPED and exits 0.
//
// Rounds alternate (peripety, then NPD), medians are reported. Each side
// runs on one thread: peripety in this process (its pipeline is synchronous
// JavaScript), NPD with GOMAXPROCS=1. Both are warmed up and both are timed
// in wall time and in CPU time of all their threads (V8's and Go's GC
// helpers included); the CPU figure is the per-record cost and does not
// depend on what else the machine runs.
//
// Environment: NPD_ROUNDS (5), NPD_PASSES (NPD records per round, in passes
// over the corpus: 50), PERIPETY_PASSES (500), NPD_VARIANTS=0 to skip the
// two context runs (NPD with channels, NPD with regexps compiled once).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import { loadCorpus } from '../test/helpers/real-world.ts';
import { corpusFile, median, rawMessage, speedRatio, splitKmsgRecords } from './lib/kmsg-corpus.ts';
import { makeBenchPipeline } from './lib/pipeline.ts';

const ROOT = path.resolve(import.meta.dirname, '..');
const ROUNDS = Number(process.env.NPD_ROUNDS ?? 5);
const NPD_PASSES = Number(process.env.NPD_PASSES ?? 50);
const PERIPETY_PASSES = Number(process.env.PERIPETY_PASSES ?? 500);
const VARIANTS = process.env.NPD_VARIANTS !== '0';
const GOAL = 3;
// Two single-line rules of NPD's config/kernel-monitor.json, as they match a
// record that is the newest line of its buffer (`.` stops at the buffer's
// newlines; the kernel's \x0a escapes are plain text to NPD). The bench
// counts the records these match and wants NPD to report exactly as many:
// proof that its side matched every record against its rules.
const KNOWN_RULES: Record<string, RegExp> = {
  IOError: /Buffer I\/O error .*$/,
  Ext4Error: /EXT4-fs error .*$/,
};

const HarnessResult = z.object({
  records: z.number(),
  seconds: z.number(),
  cpu_seconds: z.number(),
  records_per_s: z.number(),
  events: z.number(),
  statuses: z.number(),
  skipped: z.number(),
  matches: z.record(z.string(), z.number()),
  channels: z.boolean(),
  compiled_rules: z.boolean(),
  gomaxprocs: z.string(),
  rules: z.number(),
  corpus_records: z.number(),
  npd_version: z.string(),
});
type HarnessResult = z.infer<typeof HarnessResult>;

interface Timing { records: number; seconds: number; cpuSeconds: number }

function skip(reason: string): never {
  console.log(`npd benchmark: SKIPPED (${reason})`);
  process.exit(0);
}

function fmt(n: number): string {
  return Math.round(n).toLocaleString('en');
}

/** Build (or find cached) the harness: its directory, or SKIPPED when Go or the module is not here. */
function buildHarness(): string {
  const r = spawnSync('bash', [path.join(ROOT, 'hack/npd-build.sh')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  if (r.error) skip(`cannot run hack/npd-build.sh: ${r.error.message}`);
  if (r.status === 3) skip('no node-problem-detector harness: hack/npd-build.sh says why on the line above');
  if (r.status !== 0) {
    console.error(`npd benchmark: hack/npd-build.sh failed (exit ${r.status ?? r.signal})`);
    process.exit(1);
  }
  const dir = r.stdout.trim().split('\n').pop() ?? '';
  if (dir === '') skip('hack/npd-build.sh printed no directory');
  return dir;
}

function runHarness(dir: string, corpus: string, records: number, flags: string[] = []): HarnessResult {
  const r = spawnSync(path.join(dir, 'npd-harness'),
    ['-corpus', corpus, '-config', path.join(dir, 'kernel-monitor.json'), '-records', String(records), '-warmup', String(Math.min(records, 20_000)), ...flags],
    { encoding: 'utf8', env: { ...process.env, GOMAXPROCS: '1' } });
  if (r.status !== 0) throw new Error(`npd-harness ${flags.join(' ')} failed (exit ${r.status ?? r.signal}): ${r.stderr.trim()}`);
  return HarnessResult.parse(JSON.parse(r.stdout));
}

function timed(fn: () => void, records: number): Timing {
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  fn();
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = process.cpuUsage(cpu0);
  return { records, seconds, cpuSeconds: (cpu.user + cpu.system) / 1e6 };
}

function main(): void {
  const dir = buildHarness();
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'prpt-npd-bench-'));
  try {
    const corpusPath = path.join(tmp, 'corpus.kmsg');
    writeFileSync(corpusPath, corpusFile(loadCorpus()));
    // peripety reads the very file NPD's harness reads, outside the timed part
    // (as the harness does): the records as read(2) would hand them over.
    const texts = splitKmsgRecords(readFileSync(corpusPath, 'latin1'));
    const records = texts.map((r) => Buffer.from(r, 'latin1'));
    const perRecords = records.length * PERIPETY_PASSES;
    const npdRecords = records.length * NPD_PASSES;

    const pipeline = makeBenchPipeline();
    pipeline.run(records, 100_000); // warm-up: JIT, resolver cache
    pipeline.run(records, 100_000);
    const per: Timing[] = [];
    const npd: HarnessResult[] = [];
    let perEvents = 0;
    for (let round = 0; round < ROUNDS; round++) {
      pipeline.reset();
      per.push(timed(() => pipeline.run(records, perRecords), perRecords));
      perEvents = pipeline.counts.events;
      if (pipeline.counts.badRecords > 0) throw new Error(`peripety rejected ${pipeline.counts.badRecords} records of the corpus`);
      npd.push(runHarness(dir, corpusPath, npdRecords));
    }
    pipeline.close();
    const last = npd[npd.length - 1]!;
    if (last.events === 0) throw new Error('NPD matched no rule on the corpus: the harness is not doing its work');
    if (last.skipped > 0) throw new Error(`NPD's side dropped ${last.skipped} records (parse or start-time check)`);
    for (const [reason, re] of Object.entries(KNOWN_RULES)) {
      const want = NPD_PASSES * texts.filter((t) => re.test(rawMessage(t).trim())).length;
      if (want === 0 || last.matches[reason] !== want) throw new Error(`NPD matched ${reason} ${last.matches[reason] ?? 0} times; the corpus has ${want} such records`);
    }

    const perWall = median(per.map((t) => t.records / t.seconds));
    const perCpu = median(per.map((t) => t.records / t.cpuSeconds));
    const npdWall = median(npd.map((t) => t.records / t.seconds));
    const npdCpu = median(npd.map((t) => t.records / t.cpu_seconds));
    const ratioCpu = speedRatio(perCpu, npdCpu);
    const ratioWall = speedRatio(perWall, npdWall);

    const variants: { name: string; r: HarnessResult }[] = [];
    if (VARIANTS) {
      variants.push({ name: 'NPD with its goroutines and channels (as deployed)', r: runHarness(dir, corpusPath, npdRecords, ['-channels']) });
      variants.push({ name: 'not NPD: its buffer with regexps compiled once', r: runHarness(dir, corpusPath, npdRecords, ['-compiled-rules']) });
    }

    const matches = Object.entries(last.matches).sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${fmt(v)}`).join(', ');
    console.log(`npd benchmark: ${records.length} real-world records (test/fixtures/real-world as raw /dev/kmsg records), ${ROUNDS} rounds alternated, medians; node ${process.version}, node-problem-detector ${last.npd_version} (${last.rules} rules of its config/kernel-monitor.json), GOMAXPROCS=1, ${os.cpus().length} × ${os.cpus()[0]?.model ?? ''}`);
    console.log(`  peripety pipeline: ${fmt(perCpu)} records per CPU-second, ${fmt(perWall)} records/s wall (${fmt(perRecords)} records a round; ${fmt(perEvents)} events)`);
    console.log(`  NPD kernel monitor: ${fmt(npdCpu)} records per CPU-second, ${fmt(npdWall)} records/s wall (${fmt(npdRecords)} records a round; ${fmt(last.events)} events: ${matches})`);
    console.log(`  ratio peripety / NPD: ${ratioCpu.toFixed(1)}× per CPU-second, ${ratioWall.toFixed(1)}× wall`);
    for (const v of variants) console.log(`  for context, one run: ${v.name}: ${fmt(v.r.records / v.r.cpu_seconds)} records per CPU-second, ${fmt(v.r.records_per_s)} records/s wall`);
    console.log(`  goal (issue 14): ≥ ${GOAL}× — ${ratioCpu >= GOAL ? 'MET' : 'NOT MET'}`);
    console.log(JSON.stringify({
      bench: 'npd', corpus_records: records.length, rounds: ROUNDS,
      peripety: { records_per_cpu_s: Math.round(perCpu), records_per_s: Math.round(perWall), rounds: per },
      npd: { version: last.npd_version, records_per_cpu_s: Math.round(npdCpu), records_per_s: Math.round(npdWall), rounds: npd.map((r) => ({ records: r.records, seconds: r.seconds, cpuSeconds: r.cpu_seconds })), matches: last.matches },
      ratio_cpu: Number(ratioCpu.toFixed(2)), ratio_wall: Number(ratioWall.toFixed(2)),
      variants: variants.map((v) => ({ name: v.name, records_per_cpu_s: Math.round(v.r.records / v.r.cpu_seconds), records_per_s: Math.round(v.r.records_per_s) })),
    }));
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

main();
