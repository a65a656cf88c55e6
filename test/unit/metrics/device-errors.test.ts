import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Registry } from 'prom-client';
import type { StorageEvent } from '../../../src/events/schema.ts';
import { silentLogger } from '../../../src/log/logger.ts';
import { AgentMetrics } from '../../../src/metrics/agent-metrics.ts';
import { DeviceErrors, deviceErrors } from '../../../src/metrics/device-errors.ts';
import { DeviceErrorsReceiver } from '../../../src/receivers/device-errors.ts';
import { NO_ACK } from '../../../src/contracts/ack.ts';

function ev(dev: string, over: Partial<StorageEvent> = {}): StorageEvent {
  return {
    hostname: 'n1', severity: 'error', system: 'scsi', timestamp: 1, event_id: 'x', event_type: 'DISK_IO_ERROR',
    dev_wwid: '', dev_name: dev, msg: 'I/O error', extentions: {}, ...over,
  };
}

async function values(reg: Registry, name: string): Promise<Map<string, number>> {
  const m = await reg.getSingleMetric(name)!.get();
  return new Map(m.values.map((v) => [JSON.stringify(v.labels), v.value]));
}

describe('peripety_device_errors_total', () => {
  it('counts error events per device and system; warn/info and device-less events are not counted', async () => {
    const reg = new Registry();
    const d = new DeviceErrors(reg, 4);
    d.observe(ev('sda'));
    d.observe(ev('sda'));
    d.observe(ev('sda', { system: 'block' }));
    d.observe(ev('', { dev_wwid: 'naa.1' }));
    d.observe(ev('sdb', { severity: 'warn' }));
    d.observe(ev('sdb', { severity: 'info' }));
    d.observe(ev('', { dev_wwid: '' }));
    const v = await values(reg, 'peripety_device_errors_total');
    assert.equal(v.get(JSON.stringify({ device: 'sda', system: 'scsi' })), 2);
    assert.equal(v.get(JSON.stringify({ device: 'sda', system: 'block' })), 1);
    assert.equal(v.get(JSON.stringify({ device: 'naa.1', system: 'scsi' })), 1);
    assert.equal(v.size, 3);
    // folded at scrape time, counted once
    d.observe(ev('sda'));
    assert.equal((await values(reg, 'peripety_device_errors_total')).get(JSON.stringify({ device: 'sda', system: 'scsi' })), 3);
  });

  it('caps distinct devices: beyond the cap the device is "other" and the capped counter grows', async () => {
    const reg = new Registry();
    const d = new DeviceErrors(reg, 256);
    for (let i = 0; i < 1000; i++) d.observe(ev(`sd${i}`));
    d.observe(ev('sd0'));
    assert.equal(d.deviceCount, 256);
    const v = await values(reg, 'peripety_device_errors_total');
    assert.equal(v.size, 257);
    assert.equal(v.get(JSON.stringify({ device: 'other', system: 'scsi' })), 744);
    assert.equal(v.get(JSON.stringify({ device: 'sd0', system: 'scsi' })), 2);
    assert.equal((await values(reg, 'peripety_device_errors_capped_total')).get('{}'), 744);
  });

  it('one state per registry; the built-in receiver feeds it and survives a rebuild', async () => {
    const metrics = new AgentMetrics(new Registry());
    const deps = { log: silentLogger(), metrics };
    const r1 = new DeviceErrorsReceiver('device-errors', 1000, deps);
    r1.deliver(ev('sda'), NO_ACK);
    await r1.close(1000);
    const r2 = new DeviceErrorsReceiver('device-errors', 1000, deps);
    r2.deliver(ev('sda'), NO_ACK);
    await r2.close(1000);
    assert.equal(deviceErrors(metrics.registry), deviceErrors(metrics.registry));
    assert.equal((await values(metrics.registry, 'peripety_device_errors_total')).get(JSON.stringify({ device: 'sda', system: 'scsi' })), 2);
  });
});
