// Issue 10 C12: a saved kmsg position cannot blind the collector. A position
// file that names this boot with a sequence number far beyond anything the
// kernel wrote (a tampered or corrupt state directory) used to make the agent
// skip every record as "already processed" until the next reboot, silently.
// Now: a warning, peripety_kmsg_position_resets_total, and reading from the
// oldest record. Real agent, real /dev/kmsg, real boot id.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { type AgentProcess, startAgent, testConfig } from '../../helpers/agent.ts';
import { isRoot, requireRoot } from '../../helpers/faults.ts';
import { injectKmsg, uniqueDevice } from '../../helpers/kmsg.ts';
import { parseMetrics, sumMetric } from '../../helpers/prom-text.ts';

const running: AgentProcess[] = [];
after(async () => {
  for (const a of running) await a.stop('SIGKILL');
});

describe('hostile: a saved kmsg position ahead of the kernel log', { skip: !isRoot() && 'NOT ROOT: needs to write /dev/kmsg' }, () => {
  it('warns, counts it and reads from the oldest record instead of ignoring everything until reboot', async (t) => {
    if (!requireRoot(t, 'needs to write /dev/kmsg')) return;
    const stateDir = path.join(mkdtempSync(path.join(os.tmpdir(), 'prpt-hostile-pos-')), 'state');
    mkdirSync(stateDir, { recursive: true, mode: 0o700 });
    const bootId = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
    const huge = 2 ** 40;
    writeFileSync(path.join(stateDir, 'kmsg.position.json'), JSON.stringify({ boot_id: bootId, seq: huge }) + '\n');
    const a = await startAgent({ config: testConfig({ start: 'resume' }), stateDir });
    running.push(a);
    const dev = uniqueDevice('md');
    injectKmsg(`md/raid1:${dev}: Disk failure on sdx1, disabling device.`, 2);
    const ev = await a.waitFor((e) => e.dev_name === dev, 15_000, `the event of a line written after start (saved seq ${huge})`);
    assert.equal(ev.event_type, 'MD_DISK_FAILURE');
    await a.waitForLog(/saved kmsg position is ahead of the kernel log/, 5000);
    const res = await fetch(`${a.apiUrl()}/metrics`);
    const resets = sumMetric(parseMetrics(await res.text()), 'peripety_kmsg_position_resets_total', { reason: 'ahead_of_log' });
    assert.equal(resets, 1, 'the reset is counted once');
    await a.stop();
    // the saved position is real again: at or past the line's record, far below 2^40
    const saved = JSON.parse(readFileSync(path.join(stateDir, 'kmsg.position.json'), 'utf8')) as { seq: number };
    assert.ok(saved.seq >= Number(ev.extentions.kmsg_seq) && saved.seq < huge, `saved seq ${saved.seq}`);
  });
});
