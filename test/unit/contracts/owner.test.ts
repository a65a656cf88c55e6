// The owner of a Lease a component creates at run time (src/contracts/owner.ts):
// its own Pod from --pod-name/--pod-uid or $POD_NAME/$POD_UID, both or
// neither; the reference it writes; and the replacement of any other owner
// (a replacement Pod taking over the Lease of the same name).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { leaseOwnerReferences, ownedOnlyBy, podOwnerFrom, podOwnerReference } from '../../../src/contracts/owner.ts';

const UID_A = '0f8fad5b-d9cb-469f-a165-70867728950e';
const UID_B = '7c9e6679-7425-40de-944b-e07fc1f90ae7';
const A = { name: 'peripety-agent-x7k2p', uid: UID_A };
const B = { name: 'peripety-agent-q9m4z', uid: UID_B };

describe('podOwnerFrom', () => {
  it('neither: no owner, nothing to say (an agent on a plain host, tests)', () => {
    assert.deepEqual(podOwnerFrom({}, {}), { owner: null, note: null });
    assert.deepEqual(podOwnerFrom({}, { POD_NAME: '', POD_UID: '' }), { owner: null, note: null });
  });
  it('both, from the environment (the chart) or the options, an option winning over its variable', () => {
    assert.deepEqual(podOwnerFrom({}, { POD_NAME: A.name, POD_UID: A.uid }), { owner: A, note: null });
    assert.deepEqual(podOwnerFrom({ 'pod-name': A.name, 'pod-uid': A.uid }, {}), { owner: A, note: null });
    assert.deepEqual(podOwnerFrom({ 'pod-name': B.name, 'pod-uid': B.uid }, { POD_NAME: A.name, POD_UID: A.uid }), { owner: B, note: null });
    assert.deepEqual(podOwnerFrom({ 'pod-uid': B.uid }, { POD_NAME: A.name }), { owner: { name: A.name, uid: B.uid }, note: null });
  });
  it('one without the other: an error when an option was given, no owner and a note from the environment alone (an older chart sets $POD_NAME only)', () => {
    assert.throws(() => podOwnerFrom({ 'pod-name': A.name }, {}), /--pod-name \(\$POD_NAME\) without --pod-uid \(\$POD_UID\)/);
    assert.throws(() => podOwnerFrom({ 'pod-uid': A.uid }, {}), /--pod-uid \(\$POD_UID\) without --pod-name \(\$POD_NAME\)/);
    const r = podOwnerFrom({}, { POD_NAME: A.name });
    assert.equal(r.owner, null);
    assert.match(r.note ?? '', /without --pod-uid \(\$POD_UID\).*no owner/);
  });
  it('a value that is not a Pod\'s is an error naming the option', () => {
    assert.throws(() => podOwnerFrom({}, { POD_NAME: 'Not_A_Name', POD_UID: A.uid }), /--pod-name \(\$POD_NAME\): "Not_A_Name" is not a Pod name/);
    assert.throws(() => podOwnerFrom({ 'pod-name': A.name, 'pod-uid': 'not-a-uid' }, {}), /--pod-uid \(\$POD_UID\): "not-a-uid" is not a Pod uid/);
    assert.throws(() => podOwnerFrom({ 'pod-name': 'x'.repeat(254), 'pod-uid': A.uid }, {}), /not a Pod name/);
  });
});

describe('leaseOwnerReferences', () => {
  it('with the Pod: exactly one reference to it, no controller, no blockOwnerDeletion', () => {
    assert.deepEqual(leaseOwnerReferences(undefined, A), [{ apiVersion: 'v1', kind: 'Pod', name: A.name, uid: A.uid }]);
    assert.deepEqual(podOwnerReference(A), { apiVersion: 'v1', kind: 'Pod', name: A.name, uid: A.uid });
  });
  it('a replacement Pod replaces the reference of the Pod before it (else the collector deletes the Lease under it), and any other owner', () => {
    const old = [podOwnerReference(A)];
    assert.equal(ownedOnlyBy(old, B), false, 'B finds a different owner');
    assert.deepEqual(leaseOwnerReferences(old, B), [podOwnerReference(B)]);
    const many = [podOwnerReference(A), { apiVersion: 'apps/v1', kind: 'DaemonSet', name: 'x', uid: UID_B, controller: true, blockOwnerDeletion: true }];
    assert.deepEqual(leaseOwnerReferences(many, A), [podOwnerReference(A)]);
    assert.equal(ownedOnlyBy(many, A), false);
    assert.equal(ownedOnlyBy([{ ...podOwnerReference(A), blockOwnerDeletion: true }], A), false);
    assert.equal(ownedOnlyBy([{ ...podOwnerReference(A), uid: UID_B }], A), false);
    assert.equal(ownedOnlyBy(undefined, A), false);
    assert.equal(ownedOnlyBy([], A), false);
  });
  it('its own reference again: unchanged', () => {
    const own = leaseOwnerReferences(undefined, A);
    assert.equal(ownedOnlyBy(own, A), true);
    assert.deepEqual(leaseOwnerReferences(own, A), own);
  });
  it('without a Pod: what the Lease had (none on create), as before', () => {
    assert.equal(leaseOwnerReferences(undefined, null), undefined);
    const had = [podOwnerReference(B)];
    const kept = leaseOwnerReferences(had, null);
    assert.deepEqual(kept, had);
    assert.notEqual(kept, had, 'a copy');
  });
});
