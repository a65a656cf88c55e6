// The one mapping from the agent's outcomes to HTTP (src/api/status.ts):
// each failure kind's status, and the body's fields in the order the API
// has always sent them (state, error, detail).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { answerOf, FAILURE_STATUS } from '../../../src/api/status.ts';
import { done, fail } from '../../../src/contracts/outcome.ts';

describe('control API status mapping', () => {
  it('maps every failure kind to its status', () => {
    assert.deepEqual(FAILURE_STATUS, {
      'invalid': 400, 'not-found': 404, 'conflict': 409, 'rejected': 422, 'failed': 500, 'unsupported': 501, 'unavailable': 503, 'timeout': 504,
    });
  });
  it('a done outcome is 200 with its value as the body', () => {
    assert.deepEqual(answerOf(done({ applied: true, generation: 3, hash: 'h' })), { status: 200, body: { applied: true, generation: 3, hash: 'h' } });
  });
  it('a failure is {error}, with its state before and its detail after the message', () => {
    assert.equal(JSON.stringify(answerOf(fail('unavailable', 'the agent is not running'))), '{"status":503,"body":{"error":"the agent is not running"}}');
    const rejected = answerOf(fail('rejected', 'no (nothing changed)', { state: { reloaded: false } }));
    assert.equal(JSON.stringify(rejected.body), '{"reloaded":false,"error":"no (nothing changed)"}');
    assert.equal(rejected.status, 422);
    const stale = answerOf(fail('conflict', 'generation 1 is older than the applied generation 2', { detail: { generation: 2, hash: 'h2' } }));
    assert.equal(JSON.stringify(stale.body), '{"error":"generation 1 is older than the applied generation 2","generation":2,"hash":"h2"}');
    assert.equal(stale.status, 409);
  });
});
