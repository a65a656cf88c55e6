// `File: "memory"`: the last BufferSize events in a ring, like elos' fetchapi
// buffer. Nothing survives a restart; it exists so that a node always has a
// queryable recent history even without a disk. Acknowledged (a persist
// resolved; docs/architecture.md "Acknowledgement"): in the ring. Not
// durable, so what it drops is released, never reported lost.
import type { StorageEvent } from '../../events/schema.ts';
import { matchesFilter } from '../../filter/compile.ts';
import type { Backend, BackendContext, BackendHealth, BackendPlugin, EventQuery, QueryResult } from '../types.ts';
import { eventTimeUs } from '../../events/time.ts';
import { eventKey } from '../types.ts';
import { BACKEND_PLUGINS, MemoryConfig } from './options.ts';


interface Slot {
  ev: StorageEvent;
  key: string;
  timeUs: number;
  /** older than the event stored just before it */
  inversion: boolean;
}

export class MemoryBackend implements Backend {
  readonly name: string;
  private readonly capacity: number;
  private readonly slots: (Slot | undefined)[];
  /** index of the oldest held slot */
  private head = 0;
  private count = 0;
  private readonly keys = new Set<string>();
  /**
   * How many held events (other than the oldest) are older than their
   * predecessor. While 0, insertion order is time order and a query can walk
   * back from the newest and stop at `limit` instead of sorting everything.
   */
  private inversions = 0;
  private closed = false;

  constructor(name: string, config: MemoryConfig) {
    this.name = name;
    this.capacity = config.BufferSize;
    // Grows on demand: a large BufferSize costs nothing until it fills.
    this.slots = [];
  }

  async start(): Promise<void> {
    this.closed = false;
  }

  async persist(events: readonly StorageEvent[]): Promise<void> {
    if (this.closed) throw new Error(`memory backend ${this.name} is shut down`);
    for (const ev of events) this.add(ev);
  }

  private add(ev: StorageEvent): void {
    const key = eventKey(ev);
    if (this.keys.has(key)) return;
    const timeUs = eventTimeUs(ev);
    // compared with the newest before any eviction: if that one is evicted now, the new event is the oldest and its flag does not count
    const newest = this.count > 0 ? this.at(this.count - 1) : undefined;
    const slot: Slot = { ev, key, timeUs, inversion: newest !== undefined && timeUs < newest.timeUs };
    if (this.count === this.capacity) {
      this.keys.delete(this.slots[this.head]!.key);
      this.head = (this.head + 1) % this.capacity;
      this.count--;
      // The new oldest has no predecessor any more: its flag stops counting.
      if (this.count > 0 && this.at(0)!.inversion) this.inversions--;
    }
    this.slots[(this.head + this.count) % this.capacity] = slot;
    this.count++;
    if (slot.inversion && this.count > 1) this.inversions++;
    this.keys.add(key);
  }

  /** i-th held event, 0 = oldest */
  private at(i: number): Slot | undefined {
    return this.slots[(this.head + i) % this.capacity];
  }

  async findEvents(query: EventQuery): Promise<QueryResult> {
    const newest = query.newest > 0 ? query.newest : Infinity;
    const oldest = query.oldest > 0 ? query.oldest : -Infinity;
    const limit = query.limit > 0 ? Math.floor(query.limit) : Infinity;
    const filter = query.filter;
    const out: Slot[] = [];
    const ordered = this.inversions === 0;
    for (let i = this.count - 1; i >= 0; i--) {
      const s = this.at(i)!;
      if (s.timeUs > newest) continue;
      if (s.timeUs <= oldest) {
        if (ordered) break;
        continue;
      }
      if (!matchesFilter(filter, s.ev)) continue;
      out.push(s);
      // limit+1: one more than asked tells whether the result was cut
      if (ordered && out.length > limit) break;
    }
    // Stable: equal times keep newest-stored first.
    if (!ordered) out.sort((a, b) => b.timeUs - a.timeUs);
    const isTruncated = out.length > limit;
    if (isTruncated) out.length = limit;
    return { events: out.map((s) => s.ev), isTruncated };
  }

  async shutdown(): Promise<void> {
    this.closed = true;
  }

  health(): BackendHealth {
    return this.closed ? { ok: false, detail: 'shut down' } : { ok: true };
  }

  /** events held now */
  get size(): number {
    return this.count;
  }
}

export const memoryBackend: BackendPlugin<MemoryConfig> = {
  ...BACKEND_PLUGINS.memory,
  // forgets everything at a restart: what it drops does not hold the kernel read position
  durable: false,
  build(name: string, config: MemoryConfig, _ctx: BackendContext): Backend {
    return new MemoryBackend(name, config);
  },
};
