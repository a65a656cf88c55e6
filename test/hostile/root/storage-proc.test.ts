// Issue 10 B9: paths under /proc never spin. state_dir or api_token_file
// under /proc (or /sys), from the configuration or --state-dir, is refused
// with a clear error at start (the agent exits non-zero within seconds); on
// SIGHUP the new configuration is rejected, the agent keeps running and a
// SIGTERM then ends it quickly. (On f38c4a7 recursive mkdir looped at 100%
// CPU: the agent never exited at start, and after the SIGHUP it ignored
// SIGTERM.)
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { isRoot, requireRoot } from '../../helpers/faults.ts';
import { PERIPETY, quietConfig, type Running, spawnCli } from '../../helpers/cli-process.ts';

const work = mkdtempSync(path.join(os.tmpdir(), 'hostile-proc-'));
const children: Running[] = [];
after(async () => {
  for (const c of children) await c.finish(0);
  rmSync(work, { recursive: true, force: true });
});

function agent(name: string, config: string, extra: string[] = []): Running {
  const file = path.join(work, `${name}.toml`);
  writeFileSync(file, config);
  const r = spawnCli(PERIPETY, ['agent', '--config', file, ...extra]);
  children.push(r);
  return r;
}

describe('hostile: paths under /proc never spin', { skip: !isRoot() && 'NOT ROOT: runs the agent on /dev/kmsg' }, () => {
  const cases: [string, string, string[], RegExp][] = [
    ['state_dir under /proc', quietConfig('state_dir = "/proc/1/foo/bar"'), [], /state_dir: must not be under \/proc or \/sys/],
    ['api_token_file under /proc', quietConfig('api_token_file = "/proc/1/foo/bar/token"'), ['--state-dir', path.join(work, 'tok-state')], /api_token_file: must not be under \/proc or \/sys/],
    ['state_dir under /sys', quietConfig('state_dir = "/sys/kernel/peripety-x/y"'), [], /state_dir: must not be under \/proc or \/sys/],
    ['--state-dir under /proc', quietConfig(), ['--state-dir', '/proc/1/foo/bar'], /state directory \/proc\/1\/foo\/bar is under \/proc/],
  ];
  for (const [what, config, extra, re] of cases) {
    it(`${what}: refused at start, the agent exits within 15 s`, async (t) => {
      if (!requireRoot(t)) return;
      const r = agent(what.replace(/\W+/g, '-'), config, extra);
      const out = await r.finish(15_000);
      t.diagnostic(`${what}: exit ${out.code} after ${out.ms} ms: ${out.stderr.trim().split('\n').at(-1)?.slice(0, 300)}`);
      assert.notEqual(out.code, null, `the agent must exit, not spin (still running after ${out.ms} ms)`);
      assert.notEqual(out.code, 0);
      assert.match(out.stderr, re);
    });
  }

  it('SIGHUP with state_dir under /proc: rejected, the agent keeps running, SIGTERM ends it within 10 s', async (t) => {
    if (!requireRoot(t)) return;
    const file = path.join(work, 'hup.toml');
    // state_dir in the file (not --state-dir, which would override the reloaded one)
    writeFileSync(file, quietConfig(`state_dir = "${path.join(work, 'hup-state')}"`));
    const r = spawnCli(PERIPETY, ['agent', '--config', file]);
    children.push(r);
    assert.ok(await r.waitFor(/"agent started"/, 20_000), `the agent must start: ${r.stderr().slice(-1000)}`);
    writeFileSync(file, quietConfig('state_dir = "/proc/1/foo/bar"'));
    r.proc.kill('SIGHUP');
    const rejected = await r.waitFor(/must not be under \/proc/, 10_000);
    assert.equal(r.proc.exitCode, null, 'the agent must keep running after a rejected reload');
    r.proc.kill('SIGTERM');
    const out = await r.finish(10_000);
    t.diagnostic(`SIGHUP: rejected=${rejected}; SIGTERM → exit ${out.code} (${out.signal ?? 'no signal'})`);
    assert.ok(rejected, `the reload must be rejected with a clear message: ${out.stderr.slice(-1500)}`);
    assert.equal(out.code, 0, `SIGTERM must end the agent within 10 s: ${out.stderr.slice(-1500)}`);
  });
});
