// Which kernel records are fully processed. Records enter in sequence order;
// the committed position is the highest sequence number such that it and
// every record before it are done. That is what the collector saves, so a
// restart re-reads only records that were in flight, never skips one.
//
// A record whose event a must-not-lose holder gave up (Ack.lost: a
// storage backend that could neither store nor spool it) is done for this
// run, but the committed position never passes it again: it stays at the
// record before the first such one, so the next start reads from there while
// the kernel ring still holds it. The entries keep advancing meanwhile, so
// the memory stays bounded however long the hold lasts.
import type { Ack } from '../contracts/ack.ts';

interface Entry {
  seq: number;
  refs: number;
}

export class SeqTracker {
  private entries: Entry[] = [];
  private head = 0;
  private committedSeq: number;
  private readonly onCommit: (seq: number) => void;
  private readonly onLost: ((seq: number, firstHold: boolean) => void) | null;
  /** the position is held here (the record before the first lost one); null: not held */
  private heldAt: number | null = null;

  constructor(committed: number, onCommit: (seq: number) => void, onLost?: (seq: number, firstHold: boolean) => void) {
    this.committedSeq = committed;
    this.onCommit = onCommit;
    this.onLost = onLost ?? null;
  }

  /** what may be saved: done up to here, and nothing lost at or before it */
  get committed(): number {
    return this.heldAt === null ? this.committedSeq : Math.min(this.committedSeq, this.heldAt);
  }

  /** where a lost record holds the position, or null */
  get held(): number | null {
    return this.heldAt;
  }

  get inFlight(): number {
    return this.entries.length - this.head;
  }

  /** A record that needs processing: the returned ack holds one reference. */
  begin(seq: number): Ack {
    const entry: Entry = { seq, refs: 1 };
    this.entries.push(entry);
    return {
      retain: () => {
        entry.refs++;
      },
      release: () => {
        if (entry.refs <= 0) return;
        entry.refs--;
        if (entry.refs === 0) this.advance();
      },
      lost: () => {
        if (entry.refs <= 0) return;
        const first = this.heldAt === null;
        if (first || seq - 1 < this.heldAt!) this.heldAt = seq - 1;
        this.onLost?.(seq, first);
        entry.refs--;
        if (entry.refs === 0) this.advance();
      },
    };
  }

  /** A record that needs no processing (filtered out, malformed). */
  skip(seq: number): void {
    if (this.inFlight === 0) {
      this.setCommitted(seq);
    } else {
      this.entries.push({ seq, refs: 0 });
    }
  }

  private advance(): void {
    let last = -1;
    while (this.head < this.entries.length && this.entries[this.head]!.refs === 0) {
      last = this.entries[this.head]!.seq;
      this.head++;
    }
    if (this.head > 1024 && this.head * 2 > this.entries.length) {
      this.entries = this.entries.slice(this.head);
      this.head = 0;
    }
    if (last >= 0) this.setCommitted(last);
  }

  private setCommitted(seq: number): void {
    if (seq > this.committedSeq) {
      this.committedSeq = seq;
      this.onCommit(seq);
    }
  }
}
