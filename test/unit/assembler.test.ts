// The assembler against a plain reference model over many thousands of
// changes: it makes its table anew when it empties and every few thousand
// changes (a garbage-collection matter, see RENEW_AFTER in
// src/agent/assembler.ts), and none of that may change what is held, in which
// order it comes out, or what a context line merges into.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Assembler, type FlushReason } from '../../src/agent/assembler.ts';
import type { Finding } from '../../src/contracts/parser.ts';

interface Out { id: number; reason: FlushReason; ext: Record<string, string> }

/** The same bookkeeping with an array: obviously right, and slow. */
class Reference {
  held: { key: string; id: number; ext: Record<string, string>; touched: number }[] = [];
  private readonly max: number;
  constructor(max: number) {
    this.max = max;
  }
  hold(key: string, id: number, now: number, out: Out[]): void {
    const i = this.held.findIndex((h) => h.key === key);
    if (i >= 0) out.push({ id: this.held[i]!.id, reason: 'replaced', ext: this.held.splice(i, 1)[0]!.ext });
    else if (this.held.length >= this.max) {
      const h = this.held.shift()!;
      out.push({ id: h.id, reason: 'capacity', ext: h.ext });
    }
    this.held.push({ key, id, ext: { n: String(id) }, touched: now });
  }
  attach(key: string, v: string, now: number): boolean {
    const i = this.held.findIndex((h) => h.key === key);
    if (i < 0) return false;
    const [h] = this.held.splice(i, 1);
    h!.ext.ctx = h!.ext.ctx === undefined ? v : `${h!.ext.ctx}; ${v}`;
    h!.touched = now;
    this.held.push(h!);
    return true;
  }
  expire(cutoff: number, out: Out[]): void {
    while (this.held.length > 0 && this.held[0]!.touched <= cutoff) {
      const h = this.held.shift()!;
      out.push({ id: h.id, reason: 'expired', ext: h.ext });
    }
  }
}

function finding(key: string, id: number): Finding {
  return { type: 'SCSI_CMD_FAILED', device: null, msg: 'm', ext: { n: String(id) }, hold: key };
}

describe('assembler', () => {
  it('holds, replaces, evicts, merges and expires as a plain list would, over tens of thousands of changes', () => {
    const max = 24;
    const asm = new Assembler<number>(max);
    const ref = new Reference(max);
    // a fixed pseudo-random sequence: reproducible, and it mixes every path
    let seed = 12345;
    const rnd = (n: number): number => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return (seed >>> 8) % n;
    };
    const got: Out[] = [];
    const want: Out[] = [];
    let now = 0;
    for (let id = 0; id < 20_000; id++) {
      now += rnd(3);
      const key = `k${rnd(64)}`;
      const op = rnd(10);
      if (op < 6) {
        for (const g of asm.hold(finding(key, id), id, now)) for (const h of g.out) got.push({ id: h.meta, reason: g.reason, ext: h.finding.ext });
        ref.hold(key, id, now, want);
      } else if (op < 9) {
        const merged = asm.attach({ context: key, ext: { ctx: `c${id}` } }, now) === 'merged';
        assert.equal(merged, ref.attach(key, `c${id}`, now));
      } else {
        // now and then everything old goes, so the table also empties
        // in the first half the table never empties: it is made anew only by its count of changes (every 256)
        const cutoff = id > 10_000 && rnd(8) === 0 ? now : now - 200;
        for (const h of asm.expire(cutoff)) got.push({ id: h.meta, reason: 'expired', ext: h.finding.ext });
        ref.expire(cutoff, want);
      }
      assert.equal(asm.size, ref.held.length);
    }
    assert.equal(asm.oldest(), ref.held[0]?.touched);
    for (const h of asm.drain()) got.push({ id: h.meta, reason: 'drain', ext: h.finding.ext });
    for (const h of ref.held) want.push({ id: h.id, reason: 'drain', ext: h.ext });
    assert.equal(asm.size, 0);
    assert.deepEqual(got, want);
    // every path was taken
    for (const reason of ['replaced', 'capacity', 'expired', 'drain'] as const) assert.ok(want.some((o) => o.reason === reason), reason);
    assert.ok(want.some((o) => o.ext.ctx !== undefined && o.ext.ctx.includes('; ')));
  });
});
