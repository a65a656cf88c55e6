// `prpt monitor`: live events, from the multicast group or from an agent's
// GET /v1/stream (Server-Sent Events). The argument checks are in prpt.ts;
// this is the running part: the event filter, the two sources, and the
// reporting of lost events on stderr.
import type { CompiledFilter } from '../filter/types.ts';
import { type Severity, StorageEvent, type System } from '../events/schema.ts';
import type { StackInfo } from '../contracts/device.ts';
import { Backoff } from '../contracts/backoff.ts';
import { MulticastListener } from '../multicast/listener.ts';
import { RateLimited } from '../log/rate-limit.ts';

const RANK: Record<Severity, number> = { info: 0, warn: 1, error: 2 };

export interface EventMatch {
  /** this level and worse */
  severity?: Severity;
  systems?: ReadonlySet<System>;
  eventTypes?: ReadonlySet<string>;
  /** --dev: names (dev_name, extentions.kernel_dev) and wwids that count as the device */
  dev?: { names: ReadonlySet<string>; wwids: ReadonlySet<string> };
  filter?: CompiledFilter;
}

/** The names and wwids of a device and of every device below and above it (when this host knows it). */
export function deviceSet(dev: string, info: StackInfo | null): { names: Set<string>; wwids: Set<string> } {
  const names = new Set<string>([dev, dev.replace(/^\/dev\/(?:mapper\/)?/, '')]);
  const wwids = new Set<string>();
  if (info) {
    for (const id of [info.identity, ...info.below, ...info.above]) {
      names.add(id.name);
      if (id.dmName) names.add(id.dmName);
      if (id.wwid) wwids.add(id.wwid);
    }
  }
  return { names, wwids };
}

function matches(ev: StorageEvent, m: EventMatch): boolean {
  if (m.severity !== undefined && RANK[ev.severity] < RANK[m.severity]) return false;
  if (m.systems !== undefined && !m.systems.has(ev.system)) return false;
  if (m.eventTypes !== undefined && !m.eventTypes.has(ev.event_type)) return false;
  if (m.dev !== undefined) {
    const { names, wwids } = m.dev;
    const kdev = ev.extentions.kernel_dev;
    if (!names.has(ev.dev_name) && !(ev.dev_wwid !== '' && wwids.has(ev.dev_wwid)) && !(kdev !== undefined && names.has(kdev))) return false;
  }
  if (m.filter !== undefined && m.filter.evaluate(ev) !== 'MATCH') return false;
  return true;
}

export interface MonitorOutput {
  /** one event, already filtered; false when the monitor should stop (count reached) */
  event(ev: StorageEvent, envelope?: { sender: string; seq: number; truncated: boolean }): boolean;
  /** a line for stderr */
  note(text: string): void;
}

interface MonitorStats {
  received: number;
  shown: number;
  lost: number;
  /** multicast with a key: datagrams refused (forged, changed, unsigned, expired, replayed) */
  rejected?: number;
}

/** Sum lost counts and say so at most once a second (a lossy network must not flood the terminal). */
function lostReporter(note: (s: string) => void): (n: number, detail: string) => void {
  let pending = 0;
  const rl = new RateLimited<string>(1000, (details, more) => {
    const n = pending;
    pending = 0;
    note(`lost ${n} event${n === 1 ? '' : 's'}${details.length > 0 ? ` (${details.join('; ')}${more > 0 ? `; ${more} more gaps` : ''})` : ''}`);
  }, { keep: 3 });
  return (n, detail) => {
    pending += n;
    rl.push(detail);
  };
}

interface MulticastSource {
  group: string;
  port: number;
  interfaceIp?: string;
  /** the shared key: only signed datagrams that verify are shown */
  key?: Uint8Array;
}

/** Listen until `stop` resolves or the output says enough. */
export async function monitorMulticast(src: MulticastSource, match: EventMatch, out: MonitorOutput, stop: Promise<void>): Promise<MonitorStats> {
  const stats: MonitorStats = { received: 0, shown: 0, lost: 0 };
  const reportLost = lostReporter(out.note);
  let finish: () => void = () => {};
  const done = new Promise<void>((resolve) => (finish = resolve));
  const listener = new MulticastListener({
    group: src.group,
    port: src.port,
    interfaceIp: src.interfaceIp,
    key: src.key,
    onEvent: (ev, info) => {
      stats.received++;
      if (!matches(ev, match)) return;
      stats.shown++;
      if (!out.event(ev, { sender: info.sender, seq: info.seq, truncated: info.truncated })) finish();
    },
    onLost: (gap) => {
      stats.lost += gap.lost;
      reportLost(gap.lost, `from ${gap.address}, sender ${gap.sender.slice(0, 8)}, seq ${gap.fromSeq === gap.toSeq ? gap.fromSeq : `${gap.fromSeq}-${gap.toSeq}`}`);
    },
  });
  await listener.start();
  out.note(`listening on ${src.group.includes(':') ? `[${src.group}]` : src.group}:${src.port}${src.interfaceIp ? ` (interface ${src.interfaceIp})` : ''}`);
  await Promise.race([done, stop]);
  await listener.close();
  stats.lost = listener.stats.lost;
  stats.rejected = listener.stats.rejected;
  return stats;
}

/** One Server-Sent Events message. */
export interface SseMessage {
  event: string;
  data: string;
  id: string | undefined;
}

/**
 * Incremental text/event-stream parser (the subset an agent sends: event,
 * data, id; comments ignored). Bounded: a message larger than maxMessage is
 * discarded rather than buffered without end.
 */
export class SseParser {
  private buf = '';
  private event = '';
  private data: string[] = [];
  private dataBytes = 0;
  private id: string | undefined;
  private readonly maxMessage: number;
  /** messages discarded for size */
  oversized = 0;

  constructor(maxMessage = 1 << 20) {
    this.maxMessage = maxMessage;
  }

  push(text: string, emit: (m: SseMessage) => void): void {
    this.buf += text;
    let start = 0;
    for (;;) {
      const nl = this.buf.indexOf('\n', start);
      if (nl < 0) break;
      let line = this.buf.slice(start, nl);
      start = nl + 1;
      if (line.endsWith('\r')) line = line.slice(0, -1);
      this.line(line, emit);
    }
    this.buf = this.buf.slice(start);
    if (this.buf.length > this.maxMessage) {
      // a line without end: drop it and what it belonged to
      this.buf = '';
      this.reset();
      this.oversized++;
    }
  }

  private reset(): void {
    this.event = '';
    this.data = [];
    this.dataBytes = 0;
  }

  private line(line: string, emit: (m: SseMessage) => void): void {
    if (line === '') {
      if (this.data.length > 0) emit({ event: this.event || 'message', data: this.data.join('\n'), id: this.id });
      this.reset();
      return;
    }
    if (line.startsWith(':')) return;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    switch (field) {
      case 'event':
        this.event = value;
        break;
      case 'data':
        this.dataBytes += value.length;
        if (this.dataBytes > this.maxMessage) {
          this.oversized++;
          this.reset();
        } else this.data.push(value);
        break;
      case 'id':
        if (!value.includes('\0')) this.id = value;
        break;
    }
  }
}

interface AgentSource {
  /** the agent's base URL */
  url: URL;
  token: string;
}

class HttpError extends Error {}

/**
 * Stream from an agent until `stop` resolves or the output says enough. The
 * first connection must succeed (else this throws); after that a dropped
 * stream is reopened with Last-Event-ID, and the agent says how many events
 * went by meanwhile.
 */
export async function monitorAgent(src: AgentSource, match: EventMatch, out: MonitorOutput, stop: Promise<void>): Promise<MonitorStats> {
  const stats: MonitorStats = { received: 0, shown: 0, lost: 0 };
  const reportLost = lostReporter(out.note);
  const url = new URL('/v1/stream', src.url);
  let stopping = false;
  let current: AbortController | null = null;
  void stop.then(() => {
    stopping = true;
    current?.abort();
  });
  let lastId: string | undefined;
  let first = true;
  // reconnect waits: 500 ms doubling to 10 s, from 500 ms again once a stream opened
  const backoff = new Backoff({ initialMs: 500, maxMs: 10_000 });
  while (!stopping) {
    const ac = new AbortController();
    current = ac;
    let opened = false;
    try {
      const connectTimer = setTimeout(() => ac.abort(new Error('no answer within 10 s')), 10_000);
      let res: Response;
      try {
        res = await fetch(url, {
          headers: { authorization: `Bearer ${src.token}`, accept: 'text/event-stream', ...(lastId ? { 'last-event-id': lastId } : {}) },
          signal: ac.signal,
        });
      } finally {
        clearTimeout(connectTimer);
      }
      if (!res.ok || res.body === null) {
        const body: unknown = await res.json().catch(() => null);
        const why = typeof body === 'object' && body !== null && 'error' in body ? String(body.error) : res.statusText;
        throw new HttpError(`the agent answered ${res.status}: ${why}`);
      }
      opened = true;
      if (first) out.note(`streaming from ${url.origin}`);
      else out.note('stream reopened');
      first = false;
      backoff.reset();
      const parser = new SseParser();
      const decoder = new TextDecoder();
      let enough = false;
      for await (const chunk of res.body) {
        parser.push(decoder.decode(chunk, { stream: true }), (msg) => {
          if (enough) return;
          if (msg.id !== undefined) lastId = msg.id;
          if (msg.event === 'lost') {
            const n = Number(/^\{"lost":(\d{1,15})\}$/.exec(msg.data)?.[1]);
            if (Number.isSafeInteger(n) && n > 0) {
              stats.lost += n;
              reportLost(n, 'the agent dropped them for this slow client, or while disconnected');
            }
            return;
          }
          if (msg.event !== 'message') return;
          let value: unknown;
          try {
            value = JSON.parse(msg.data);
          } catch {
            return;
          }
          const ev = StorageEvent.safeParse(value);
          if (!ev.success) return;
          stats.received++;
          if (!matches(ev.data, match)) return;
          stats.shown++;
          if (!out.event(ev.data)) enough = true;
        });
        if (enough) {
          // stopping first: the abort surfaces as an error from the body
          stopping = true;
          ac.abort();
          break;
        }
      }
      if (!stopping) out.note('the agent closed the stream; reconnecting');
    } catch (err) {
      if (stopping) break;
      if (first && !opened) {
        if (err instanceof HttpError) throw err;
        const cause = (err as { cause?: { code?: string; message?: string } }).cause;
        throw new Error(`cannot reach the agent at ${url.origin}: ${cause?.code ?? cause?.message ?? (err as Error).message}`);
      }
      out.note(`stream interrupted (${(err as Error).message}); reconnecting`);
    }
    if (stopping) break;
    const wait = backoff.next();
    await Promise.race([new Promise((r) => setTimeout(r, wait)), stop]);
  }
  return stats;
}
