// Issue 10 B10: reads are bounded. Configuration and token files must be
// regular files of bounded size: /dev/zero, a FIFO or a huge file named as
// --config / --storage-config / a token file is refused at once with an
// error naming the file, in little memory. `prpt parse` streams its input:
// /dev/zero runs in bounded memory, an over-long line is skipped and
// reported, and `… | prpt parse` prints an event while the pipe is still
// open (dmesg -w). (On f38c4a7: `--config /dev/zero` and `prpt parse
// /dev/zero` grew by gigabytes, a FIFO config blocked forever, and a live
// pipe printed nothing until it closed.)
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { PERIPETY, PRPT, quietConfig, type Running, spawnCli } from '../helpers/cli-process.ts';

const work = mkdtempSync(path.join(os.tmpdir(), 'hostile-reads-'));
const fifo = path.join(work, 'config.fifo');
execFileSync('mkfifo', [fifo]);
const good = path.join(work, 'good.toml');
writeFileSync(good, quietConfig());
const huge = path.join(work, 'huge.toml');
writeFileSync(huge, `# ${'x'.repeat(8 * 1024 * 1024)}\n`);
/** a run that passes this is a failure (and is killed at once, to spare the shared machine) */
const MAX_KIB = 400 * 1024;
const children: Running[] = [];
after(async () => {
  for (const c of children) await c.finish(0);
  rmSync(work, { recursive: true, force: true });
});

function run(bin: string, args: string[], stdin: 'ignore' | 'pipe' = 'ignore'): Running {
  const r = spawnCli(bin, args, { maxKiB: MAX_KIB, stdin, env: { ...process.env, PERIPETY_TOKEN: '' } });
  children.push(r);
  return r;
}

describe('hostile: configuration and token reads are bounded', () => {
  const cases: [string, string, string[], RegExp][] = [
    ['agent --config /dev/zero', PERIPETY, ['agent', '--config', '/dev/zero', '--state-dir', path.join(work, 's1')], /\/dev\/zero is a character device/],
    ['agent --config FIFO', PERIPETY, ['agent', '--config', fifo, '--state-dir', path.join(work, 's2')], /config\.fifo is a FIFO/],
    ['agent --config 8 MiB file', PERIPETY, ['agent', '--config', huge, '--state-dir', path.join(work, 's3')], /huge\.toml is larger than 1048576 bytes/],
    ['agent --storage-config /dev/zero', PERIPETY, ['agent', '--config', good, '--storage-config', '/dev/zero', '--state-dir', path.join(work, 's4')], /\/dev\/zero is a character device/],
    ['agent --storage-config FIFO', PERIPETY, ['agent', '--config', good, '--storage-config', fifo, '--state-dir', path.join(work, 's5')], /config\.fifo is a FIFO/],
    ['receive --config /dev/zero', PERIPETY, ['receive', '--config', '/dev/zero'], /\/dev\/zero is a character device/],
    ['prpt query --token-file /dev/zero', PRPT, ['query', '--agent', 'http://127.0.0.1:9', '--token-file', '/dev/zero'], /\/dev\/zero is a character device/],
    ['prpt query --token-file FIFO', PRPT, ['query', '--agent', 'http://127.0.0.1:9', '--token-file', fifo], /config\.fifo is a FIFO/],
  ];
  for (const [what, bin, args, re] of cases) {
    it(`${what}: refused within 10 s, naming the file, in bounded memory`, async (t) => {
      const out = await run(bin, args).finish(10_000);
      t.diagnostic(`${what}: exit ${out.code ?? `none (killed: ${out.peakKiB > MAX_KIB ? 'memory' : 'deadline'})`} after ${out.ms} ms, peak RSS ${Math.round(out.peakKiB / 1024)} MiB: ${out.stderr.trim().split('\n').at(-1)?.slice(0, 200)}`);
      assert.ok(out.peakKiB <= MAX_KIB, `peak RSS ${out.peakKiB} KiB`);
      assert.notEqual(out.code, null, 'it must exit, not hang');
      assert.notEqual(out.code, 0);
      assert.match(out.stderr, re);
    });
  }
});

describe('hostile: prpt parse streams its input', () => {
  it('prpt parse /dev/zero stays in bounded memory (5 s)', async (t) => {
    const r = run(PRPT, ['parse', '--no-resolve', '/dev/zero']);
    const out = await r.finish(5_000);
    t.diagnostic(`prpt parse /dev/zero: peak RSS ${Math.round(out.peakKiB / 1024)} MiB after ${out.ms} ms (exit ${out.code})`);
    assert.ok(out.peakKiB > 0, 'the memory was measured');
    assert.ok(out.peakKiB <= 192 * 1024, `peak RSS ${Math.round(out.peakKiB / 1024)} MiB`);
  });

  it('an over-long line is skipped and reported; the lines around it still parse', async () => {
    const file = path.join(work, 'long.txt');
    const line = (n: number) => `[  613.52438${n}] Buffer I/O error on dev sdz${n}, logical block ${n}, async page read`;
    writeFileSync(file, `${line(1)}\n${'y'.repeat(2 * 1024 * 1024)}\n${line(2)}\n`);
    const out = await run(PRPT, ['parse', '--no-resolve', '--json', file]).finish(20_000);
    assert.equal(out.code, 0, out.stderr);
    assert.match(out.stderr, /long\.txt:2: skipped: line longer than 65536 bytes/);
    const devs = out.stdout.trim().split('\n').map((l) => (JSON.parse(l) as { dev_name: string }).dev_name);
    assert.deepEqual(devs, ['sdz1', 'sdz2']);
  });

  it('a live pipe: an event is printed before the pipe closes (dmesg -w | prpt parse)', async (t) => {
    const r = run(PRPT, ['parse', '--no-resolve', '--json'], 'pipe');
    r.proc.stdin!.write('[  613.524384] Buffer I/O error on dev sdlive1, logical block 7, async page read\n');
    const seen = await r.waitFor(/"dev_name":"sdlive1"/, 10_000, 'stdout');
    t.diagnostic(`live pipe: event printed while the pipe is open: ${seen}`);
    r.proc.stdin!.end();
    const out = await r.finish(10_000);
    assert.ok(seen, `no event while the pipe was open; stdout after close: ${out.stdout.slice(0, 300)}`);
    assert.equal(out.code, 0, out.stderr);
  });
});
