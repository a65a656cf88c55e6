// The pure decisions of one-off commands (src/controller/commands.ts): the
// annotation's grammar, when a value runs, what status.command says.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { COMMAND_ANNOTATION, commandPath, completedStatus, decideCommand, interruptedStatus, invalidStatus, isInterrupted, isResourceAction, notAcceptedStatus, parseCommand, requestKey } from '../../../src/controller/commands.ts';
import { CommandStatus, MAX_FAILURES, MAX_COMMAND_REQUEST } from '../../../src/crd/schemas.ts';

const AT = '2026-01-02T03:04:05Z';

describe('parseCommand', () => {
  it('takes ACTION and ACTION@NONCE for every action', () => {
    for (const a of ['start', 'stop', 'restart', 'reload', 'flush'] as const) {
      assert.deepEqual(parseCommand(a), { ok: true, action: a, nonce: null });
      assert.deepEqual(parseCommand(`${a}@2`), { ok: true, action: a, nonce: '2' });
    }
    assert.deepEqual(parseCommand('restart@2026-01-02T03:04:05Z.x_y'), { ok: true, action: 'restart', nonce: '2026-01-02T03:04:05Z.x_y' });
    const longest = `restart@${'n'.repeat(MAX_COMMAND_REQUEST - 8)}`;
    assert.equal(longest.length, MAX_COMMAND_REQUEST);
    assert.equal(parseCommand(longest).ok, true);
  });

  const bad: [string, string, RegExp][] = [
    ['empty', '', /is empty/],
    ['an unknown action', 'reboot', /unknown action "reboot"; use ACTION or ACTION@NONCE, ACTION one of start, stop, restart, reload, flush/],
    ['upper case', 'Restart', /write "restart": lower case, no spaces/],
    ['surrounding spaces', ' restart ', /write "restart"/],
    ['an empty nonce', 'restart@', /nonce after "@"/],
    ['a nonce with a space', 'restart@a b', /nonce after "@"/],
    ['two @', 'restart@a@b', /nonce after "@"/],
    ['only a nonce', '@2', /unknown action ""/],
    ['too long', `restart@${'n'.repeat(MAX_COMMAND_REQUEST)}`, new RegExp(`is ${MAX_COMMAND_REQUEST + 8} characters long, at most ${MAX_COMMAND_REQUEST}`)],
    ['a control character', 'restart\n', /unknown action/],
  ];
  for (const [what, value, re] of bad) {
    it(`refuses ${what}, saying what to write`, () => {
      const p = parseCommand(value);
      assert.equal(p.ok, false);
      if (!p.ok) {
        assert.match(p.message, re);
        assert.ok(p.message.startsWith(COMMAND_ANNOTATION), p.message);
        assert.ok(p.message.length < 400, 'bounded');
      }
    });
  }
  it('a huge value is quoted only in part', () => {
    const p = parseCommand('x'.repeat(100_000));
    assert.equal(p.ok, false);
    if (!p.ok) assert.ok(p.message.length < 400);
  });
});

describe('decideCommand', () => {
  it('no annotation: nothing', () => {
    assert.deepEqual(decideCommand(undefined, undefined), { kind: 'none' });
    assert.deepEqual(decideCommand(undefined, 'restart'), { kind: 'none' });
  });
  it('a new value runs; the recorded value does not run again; a new nonce runs again', () => {
    assert.deepEqual(decideCommand('restart', undefined), { kind: 'run', request: 'restart', action: 'restart' });
    assert.deepEqual(decideCommand('restart', 'restart'), { kind: 'none' });
    assert.deepEqual(decideCommand('restart@2', 'restart'), { kind: 'run', request: 'restart@2', action: 'restart' });
    assert.deepEqual(decideCommand('flush', 'restart@2'), { kind: 'run', request: 'flush', action: 'flush' });
  });
  it('an invalid value is reported once (then it is the recorded request)', () => {
    const d = decideCommand('reboot', undefined);
    assert.equal(d.kind, 'invalid');
    assert.equal(decideCommand('reboot', d.kind === 'invalid' ? d.request : '').kind, 'none');
  });
  it('an over-long value is recorded cut, and compared cut', () => {
    const long = 'restart@'.padEnd(5000, 'x');
    const d = decideCommand(long, undefined);
    assert.equal(d.kind, 'invalid');
    const key = requestKey(long);
    assert.equal(key.length, MAX_COMMAND_REQUEST);
    assert.ok(key.endsWith('…'));
    assert.deepEqual(decideCommand(long, key), { kind: 'none' });
    assert.equal(requestKey('restart'), 'restart');
  });
});

describe('commandPath', () => {
  it('the resource\'s own plugin or backend, or the agent', () => {
    assert.equal(commandPath('sep', 'scsi', 'stop'), 'v1/plugins/scsi:stop');
    assert.equal(commandPath('sbe', 'errors', 'restart'), 'v1/backends/errors:restart');
    assert.equal(commandPath('sbe', 'errors', 'flush'), 'v1/flush');
    assert.equal(commandPath('sep', 'scsi', 'reload'), 'v1/reload');
    assert.equal(isResourceAction('start'), true);
    assert.equal(isResourceAction('reload'), false);
  });
});

describe('status.command', () => {
  const base = { request: 'restart@2', action: 'restart' as const, startedAt: AT, kind: 'sbe' as const, name: 'errors' };
  const valid = (s: CommandStatus) => assert.equal(CommandStatus.safeParse(s).success, true, JSON.stringify(CommandStatus.safeParse(s).error?.issues));

  it('every agent did it: Succeeded; skipped nodes without an agent are named', () => {
    const s = completedStatus(base, [{ node: 'b', ok: true, message: '' }, { node: 'a', ok: true, message: '' }], ['c'], AT);
    valid(s);
    assert.equal(s.phase, 'Succeeded');
    assert.equal(s.nodesTargeted, 2);
    assert.equal(s.nodesSucceeded, 2);
    assert.equal(s.nodesFailed, 0);
    assert.equal(s.failures, undefined);
    assert.match(s.message, /restart of StorageBackend errors succeeded on 2 node\(s\); 1 selected node\(s\) have no registered agent and were skipped: c/);
  });
  it('some failed: Failed, failures sorted and bounded', () => {
    const results = Array.from({ length: 30 }, (_, i) => ({ node: `n${String(29 - i).padStart(2, '0')}`, ok: i === 0, message: 'x'.repeat(5000) }));
    const s = completedStatus(base, results, [], AT);
    valid(s);
    assert.equal(s.phase, 'Failed');
    assert.equal(s.nodesSucceeded, 1);
    assert.equal(s.nodesFailed, 29);
    assert.equal(s.failures?.length, MAX_FAILURES);
    assert.equal(s.failures?.[0]?.node, 'n00');
    assert.match(s.message, /failed on 29 of 30 node\(s\)/);
  });
  it('nothing to run on: Failed, saying why', () => {
    const none = completedStatus(base, [], [], AT);
    valid(none);
    assert.equal(none.phase, 'Failed');
    assert.match(none.message, /selects no node/);
    const noAgent = completedStatus(base, [], ['a', 'b'], AT);
    assert.match(noAgent.message, /none of the 2 selected node\(s\) has a registered agent \(a, b\)/);
  });
  it('invalid, not accepted and interrupted records are valid status and say what to do', () => {
    const inv = invalidStatus('reboot', parseCommand('reboot').ok ? '' : 'bad', AT);
    valid(inv);
    assert.equal(inv.phase, 'Invalid');
    assert.equal(inv.action, undefined);
    const na = notAcceptedStatus('stop', 'stop', 'sep', AT);
    valid(na);
    assert.match(na.message, /StorageEventPlugin is not accepted.*new nonce \(e\.g\. stop@2\)/);
    const running: CommandStatus = { request: 'flush', action: 'flush', phase: 'Running', startedAt: AT, nodesTargeted: 2, nodesSucceeded: 0, nodesFailed: 0, message: 'sending' };
    assert.equal(isInterrupted(running, false), true);
    assert.equal(isInterrupted(running, true), false, 'this replica runs it');
    assert.equal(isInterrupted({ ...running, phase: 'Succeeded' }, false), false);
    assert.equal(isInterrupted(undefined, false), false);
    const i = interruptedStatus(running, AT);
    valid(i);
    assert.equal(i.phase, 'Failed');
    assert.equal(i.request, 'flush');
    assert.match(i.message, /interrupted.*flush@2/);
  });
});
