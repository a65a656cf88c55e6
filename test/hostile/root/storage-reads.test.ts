// Issue 10 B10 on a running agent: SIGHUP with --config (or --storage-config)
// replaced by a FIFO or /dev/zero. The reload must be rejected with an error
// naming the file, the agent must keep running, and SIGTERM must end it
// quickly. (On f38c4a7 the reload's read of the FIFO blocked the event loop:
// nothing was logged and SIGTERM was ignored.)
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { isRoot, requireRoot } from '../../helpers/faults.ts';
import { PERIPETY, quietConfig, type Running, spawnCli } from '../../helpers/cli-process.ts';

const work = mkdtempSync(path.join(os.tmpdir(), 'hostile-hupfifo-'));
const children: Running[] = [];
after(async () => {
  for (const c of children) await c.finish(0);
  rmSync(work, { recursive: true, force: true });
});

describe('hostile: a reload never blocks on a FIFO or reads /dev/zero', { skip: !isRoot() && 'NOT ROOT: runs the agent on /dev/kmsg' }, () => {
  for (const [what, replace] of [
    ['a FIFO', (f: string) => execFileSync('mkfifo', [f])],
    ['a link to /dev/zero', (f: string) => symlinkSync('/dev/zero', f)],
  ] as const) {
    it(`SIGHUP with --config replaced by ${what}: rejected, still running, SIGTERM exits within 10 s`, async (t) => {
      if (!requireRoot(t)) return;
      const file = path.join(work, `${what.replace(/\W+/g, '-')}.toml`);
      writeFileSync(file, quietConfig());
      const r = spawnCli(PERIPETY, ['agent', '--config', file, '--state-dir', path.join(work, `${what.replace(/\W+/g, '-')}-state`)], { maxKiB: 600 * 1024 });
      children.push(r);
      assert.ok(await r.waitFor(/"agent started"/, 20_000), r.stderr().slice(-1000));
      unlinkSync(file);
      replace(file);
      r.proc.kill('SIGHUP');
      const rejected = await r.waitFor(/keeping the running configuration|the running configuration is unchanged/, 10_000);
      assert.equal(r.proc.exitCode, null, 'still running');
      r.proc.kill('SIGTERM');
      const out = await r.finish(10_000);
      t.diagnostic(`${what}: reload rejected=${rejected}, SIGTERM → exit ${out.code}, peak RSS ${Math.round(out.peakKiB / 1024)} MiB`);
      assert.ok(rejected, out.stderr.slice(-1500));
      assert.match(out.stderr, /is a (FIFO|character device)/);
      assert.equal(out.code, 0, `SIGTERM must end the agent: ${out.stderr.slice(-1000)}`);
    });
  }
});
