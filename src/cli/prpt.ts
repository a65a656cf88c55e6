// `prpt`: the user's tool. `prpt parse` (offline kernel text → events),
// `prpt info <device>` (identity and stack), `prpt query` (stored events),
// `prpt monitor` (live events: multicast group or agent stream).
import { once } from 'node:events';
import { existsSync, statSync } from 'node:fs';
import { type FileHandle, open } from 'node:fs/promises';
import { isIP } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import { type EventsRequest, parseEventsQuery } from '../api/query.ts';
import { isSystem, SEVERITIES, Severity, StorageEvent, SYSTEMS } from '../events/schema.ts';
import { isMulticast } from '../config/schema.ts';
import { deviceSet, type EventMatch, type MonitorOutput, monitorAgent, monitorMulticast } from './monitor.ts';
import { compileFilter } from '../filter/compile.ts';
import { MAX_TOKEN_FILE_BYTES, readRegularFile, UnsafePathError } from '../fsutil/safe-files.ts';
import { silentLogger } from '../log/logger.ts';
import { sqliteBackend } from '../storage/backends/sqlite.ts';
import { parseTimeArg } from './time.ts';
import { readBootId } from '../agent/agent.ts';
import { bootEpochUs } from '../agent/clock.ts';
import { type OfflineSummary, OfflineParser } from '../agent/offline.ts';
import { SysfsResolver } from '../device/resolver.ts';
import { DEFAULT_ROOTS, type Identity } from '../contracts/device.ts';
import { loadKeyFile } from '../multicast/key.ts';
import { escapeControls, formatJson, formatText, jsonLine } from '../receivers/format.ts';
import { parse, runCli, UsageError } from './args.ts';
import { LineSplitter } from './lines.ts';

const DEFAULT_AGENT = 'http://127.0.0.1:9477';
const DEFAULT_GROUP = '239.0.0.1';
const DEFAULT_PORT = 6000;
/** the agent's default receiver_bind_ip: its datagrams loop back on lo, and only a member on lo gets them */
const DEFAULT_INTERFACE = '127.0.0.1';
const DEFAULT_TOKEN_FILE = '/var/lib/peripety/api-token';

const USAGE = `usage:
  prpt parse [--json] [--resolve | --no-resolve] [--sysfs-root DIR] [--dev-root DIR] [--boot-id ID]
             [--host NAME] [--year YYYY] [FILE|-]
      kernel log text in (a file, /dev/kmsg, or stdin), storage events out. Each line's format is found
      on its own: /dev/kmsg records, dmesg (-r, -x, -T, -H, iso, caller ids), journalctl -k (short,
      short-iso/-precise/-full/-monotonic, json, export), syslog files (RFC 3164/3339/5424).
      Devices are resolved against this machine only for /dev/kmsg or with --resolve (or a --sysfs-root);
      events name the host the line names, else --host (default: this machine when resolving, else
      'unknown'). --year: for formats without one (default: this year). A summary goes to stderr;
      exit 1 when no line was a kernel record in a known format and no event was made.
  prpt info [--json] [--sysfs-root DIR] [--dev-root DIR] [--mountinfo FILE] <device>
      identity and stack of a block device: sdb, /dev/sdb, 8:16, 2:0:0:0, dm-0, a dm name
  prpt query [--filter RPN] [--since TIME] [--until TIME] [--limit N] [--backend NAME]
             [--agent URL [--token-file FILE] | --sqlite FILE] [--json]
      stored events, newest first: from a running agent (default ${DEFAULT_AGENT}, token from
      --token-file, $PERIPETY_TOKEN or ${DEFAULT_TOKEN_FILE}) or straight from a sqlite file.
      TIME: now, 15m, 2h, 7d (ago), Unix seconds, or ISO 8601. --limit 0: everything
  prpt monitor [--multicast IP[:PORT] [--interface IP] [--envelope] [--key-file FILE] | --agent URL [--token-file FILE]]
               [--severity S] [--system X[,Y]] [--event-type T[,U]] [--dev D] [--filter RPN]
               [--json] [--count N]
      live events: joins the multicast group (default ${DEFAULT_GROUP}:${DEFAULT_PORT}) on the interface with
      IPv4 address --interface (default ${DEFAULT_INTERFACE}, the agent's default receiver_bind_ip), or
      streams from an agent (token as for query).
      --severity: that level and worse; --dev: the device and those below/above it;
      --envelope: JSON lines {sender, seq, truncated, event}. Lost events are reported on stderr.
      --key-file: the agents' shared multicast key; only datagrams signed with it are shown.
`;

const rootOptions = {
  'sysfs-root': { type: 'string' },
  'dev-root': { type: 'string' },
  mountinfo: { type: 'string' },
} as const;

function roots(values: { 'sysfs-root'?: string; 'dev-root'?: string; mountinfo?: string }) {
  return {
    sysfs: values['sysfs-root'] ?? DEFAULT_ROOTS.sysfs,
    dev: values['dev-root'] ?? DEFAULT_ROOTS.dev,
    mountinfo: values.mountinfo ?? DEFAULT_ROOTS.mountinfo,
  };
}

/** a longer input line is no kernel record (those are at most a few KiB): skipped, counted, reported */
const MAX_PARSE_LINE_BYTES = 64 * 1024;
/** with no input for this long (a live pipe), the last record is parsed and held events are printed */
const PARSE_IDLE_MS = 300;
/** lines reported one by one on stderr; the rest are only counted */
const MAX_REPORTED = 20;

function inputError(name: string, err: unknown): Error {
  const code = (err as NodeJS.ErrnoException).code;
  return new Error(`cannot read ${name}: ${code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a directory' : (code ?? (err as Error).message)}`);
}

/** A file's bytes through one reused buffer (no garbage per chunk: /dev/zero stays flat). */
async function* readChunks(fh: FileHandle): AsyncGenerator<Buffer> {
  const buf = Buffer.allocUnsafe(64 * 1024);
  try {
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, buf.length, null);
      if (bytesRead === 0) return;
      yield buf.subarray(0, bytesRead);
    }
  } finally {
    await fh.close();
  }
}

/**
 * `prpt parse`: the input is streamed line by line (a file, a device, or a
 * pipe that stays open such as `dmesg -w | prpt parse`), so memory stays
 * bounded whatever its size; events are printed as they come, with the
 * output's backpressure respected.
 */
async function parseMain(args: string[]): Promise<number> {
  const { values, positionals } = parse(args, {
    json: { type: 'boolean' },
    resolve: { type: 'boolean' },
    'no-resolve': { type: 'boolean' },
    'boot-id': { type: 'string' },
    host: { type: 'string' },
    year: { type: 'string' },
    ...rootOptions,
  }, 1);
  const file = positionals[0] ?? '-';
  const name = file === '-' ? 'stdin' : file;
  if (values.resolve && values['no-resolve']) throw new UsageError('--resolve and --no-resolve: give one');
  let year = new Date().getFullYear();
  if (values.year !== undefined) {
    if (!/^\d{4}$/.test(values.year)) throw new UsageError(`--year ${JSON.stringify(values.year)}: not a four-digit year`);
    year = Number(values.year);
  }
  if (values.host !== undefined && !/^[\w.:-]{1,253}$/.test(values.host)) throw new UsageError(`--host ${JSON.stringify(values.host.slice(0, 80))}: not a host name`);
  // A file or a pipe may come from another machine: its devices are not this
  // machine's (253:0 may be a zram device here), so only live kernel input —
  // /dev/kmsg itself — or an explicit --resolve / --sysfs-root is resolved.
  const live = file !== '-' && isCharDevice(file);
  const resolve = !values['no-resolve'] && (values.resolve === true || live || values['sysfs-root'] !== undefined || values['dev-root'] !== undefined);
  let bootId = values['boot-id'];
  if (!bootId) {
    try {
      bootId = readBootId('/proc/sys/kernel/random/boot_id');
    } catch {
      bootId = 'offline';
    }
  }
  const fmt = values.json ? formatJson : formatText;
  let out = '';
  let errors = 0;
  const parser = new OfflineParser({
    hostname: values.host ?? (resolve ? os.hostname() : 'unknown'),
    bootId,
    bootEpochUs: bootEpochUs(),
    resolver: resolve ? new SysfsResolver(roots(values)) : null,
    source: name,
    text: { year },
  }, (ev) => {
    out += fmt(ev) + '\n';
  }, (e) => {
    errors++;
    if (errors <= MAX_REPORTED) process.stderr.write(escapeControls(`prpt parse: ${name}:${e.line}: skipped: ${e.error}`) + '\n');
  });
  const flushOut = async (): Promise<void> => {
    if (out === '') return;
    const ok = process.stdout.write(out);
    out = '';
    if (!ok) await once(process.stdout, 'drain');
  };
  let input: AsyncIterable<Buffer>;
  if (file === '-') input = process.stdin as AsyncIterable<Buffer>;
  else {
    // opened first, so that a missing file is a clear error and not a stream event
    let fh: FileHandle;
    try {
      fh = await open(file, 'r');
    } catch (err) {
      throw inputError(file, err);
    }
    input = readChunks(fh);
  }
  const splitter = new LineSplitter(
    MAX_PARSE_LINE_BYTES,
    (line) => parser.line(line.toString('latin1')),
    (n) => parser.skipped(`line longer than ${MAX_PARSE_LINE_BYTES} bytes (${n} bytes or more)`),
  );
  let idle: NodeJS.Timeout | null = null;
  try {
    for await (const chunk of input) {
      splitter.push(chunk);
      await flushOut();
      // a live pipe that pauses: parse the last record and print what waits for context lines
      if (idle !== null) clearTimeout(idle);
      idle = setTimeout(() => {
        idle = null;
        parser.idle();
        void flushOut();
      }, PARSE_IDLE_MS);
    }
  } catch (err) {
    throw inputError(file === '-' ? 'standard input' : file, err);
  } finally {
    if (idle !== null) clearTimeout(idle);
  }
  splitter.end();
  parser.end();
  await flushOut();
  if (errors > MAX_REPORTED) process.stderr.write(`prpt parse: ${errors} lines skipped in all\n`);
  const sum = parser.summary();
  process.stderr.write(escapeControls(`prpt parse: ${name}: ${summaryLine(sum)}`) + '\n');
  return sum.kernelRecords === 0 && sum.events === 0 ? 1 : 0;
}

/** `N lines: M kernel records (formats), K events, U lines in no known format` */
export function summaryLine(s: OfflineSummary): string {
  const formats = Object.entries(s.formats).sort((a, b) => b[1] - a[1]).map(([f, n]) => `${f} ${n}`).join(', ');
  const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? '' : 's'}`;
  return `${plural(s.lines, 'line')}: ${plural(s.kernelRecords, 'kernel record')}${formats ? ` (${formats})` : ''}, ${plural(s.events, 'event')}, ` +
    `${plural(s.unknownLines, 'line')} in no known format${s.unknownLines > 0 ? ' (read as bare messages)' : ''}` +
    `${s.otherLines > 0 ? `, ${plural(s.otherLines, 'line')} of other programs` : ''}`;
}

function isCharDevice(file: string): boolean {
  try {
    return statSync(file).isCharacterDevice();
  } catch {
    return false;
  }
}

const QueryAnswer = z.object({ events: z.array(StorageEvent), isTruncated: z.boolean() });

function idLine(id: Identity): string {
  return `${id.name}${id.majmin ? ` [${id.majmin}]` : ''}${id.dmName ? ` (${id.dmName})` : ''} wwid=${id.wwid || '-'}`;
}

async function infoMain(args: string[]): Promise<number> {
  const { values, positionals } = parse(args, { json: { type: 'boolean' }, ...rootOptions }, 1);
  const dev = positionals[0];
  if (!dev) throw new UsageError('info needs a device');
  const resolver = new SysfsResolver(roots(values));
  const info = resolver.describe(dev);
  if (!info) {
    process.stderr.write(`prpt info: no block device "${dev.slice(0, 200)}" under ${roots(values).sysfs}\n`);
    return 1;
  }
  if (values.json) {
    process.stdout.write(jsonLine(info, 2) + '\n');
    return 0;
  }
  const lines = [
    `device:     ${info.identity.name}`,
    `wwid:       ${info.identity.wwid || '(unknown)'}`,
    info.identity.majmin ? `major:minor ${info.identity.majmin}` : '',
    info.identity.dmName ? `dm name:    ${info.identity.dmName}` : '',
    info.identity.preferredPath ? `path:       ${info.identity.preferredPath}` : '',
    info.fs.uuid ? `fs uuid:    ${info.fs.uuid}${info.fs.fsType ? ` (${info.fs.fsType})` : ''}` : '',
    info.fs.mountPoint ? `mounted on: ${info.fs.mountPoint}` : '',
    ...info.below.map((b) => `below:      ${idLine(b)}`),
    ...info.above.map((a) => `above:      ${idLine(a)}`),
    ...info.links.map((l) => `link:       ${l}`),
  ].filter((l) => l !== '');
  // device names, dm names, link names and mount points come from sysfs and mountinfo: escaped
  process.stdout.write(lines.map(escapeControls).join('\n') + '\n');
  return 0;
}

function timeArg(name: string, value: string | undefined): number {
  if (value === undefined) return 0;
  const r = parseTimeArg(value, Date.now());
  if (!r.ok) throw new UsageError(`--${name}: ${r.error}`);
  return r.us;
}

function readToken(file: string | undefined): string {
  let token: string;
  let from: string;
  if (file === undefined && process.env.PERIPETY_TOKEN) {
    token = process.env.PERIPETY_TOKEN.trim();
    from = '$PERIPETY_TOKEN';
  } else {
    from = file ?? DEFAULT_TOKEN_FILE;
    try {
      // a regular file (a Secret mount's link to one is fine), never a FIFO or device, at most a token's size
      token = readRegularFile(from, 'the API token file', { maxBytes: MAX_TOKEN_FILE_BYTES }).trim();
    } catch (err) {
      if (err instanceof UnsafePathError) throw new Error(`${err.message} (use --token-file or $PERIPETY_TOKEN)`);
      throw new Error(`cannot read the API token ${from}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message} (use --token-file or $PERIPETY_TOKEN)`);
    }
  }
  // the token goes into an HTTP header: refuse anything that is not one (and never echo it)
  if (!/^[A-Za-z0-9._~+/=-]{1,8000}$/.test(token)) throw new Error(`${from} does not hold an API token (one line of [A-Za-z0-9._~+/=-])`);
  return token;
}

async function fromAgent(base: string, token: string, params: URLSearchParams): Promise<{ events: StorageEvent[]; isTruncated: boolean }> {
  let url: URL;
  try {
    url = new URL('/v1/events', base);
  } catch {
    throw new UsageError(`--agent: "${base.slice(0, 100)}" is not a URL`);
  }
  url.search = params.toString();
  let res: Response;
  try {
    res = await fetch(url, { headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(30_000) });
  } catch (err) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    throw new Error(`cannot reach the agent at ${url.origin}: ${cause?.code ?? cause?.message ?? (err as Error).message}`);
  }
  const body: unknown = await res.json().catch(() => null);
  if (!res.ok) {
    const why = typeof body === 'object' && body !== null && 'error' in body ? String(body.error) : res.statusText;
    throw new Error(`the agent answered ${res.status}: ${why}`);
  }
  const parsed = QueryAnswer.safeParse(body);
  if (!parsed.success) throw new Error('the agent sent an answer that is not {events, isTruncated}');
  return parsed.data;
}

async function fromSqlite(file: string, req: EventsRequest, limit: number): Promise<{ events: StorageEvent[]; isTruncated: boolean }> {
  if (!existsSync(file)) throw new Error(`no such file: ${file}`);
  let filter = null;
  if (req.filter !== null) {
    const c = compileFilter(req.filter);
    if (!c.ok) throw new UsageError(`--filter: ${c.error.message} (position ${c.error.position}, token ${JSON.stringify(c.error.token)})`);
    filter = c.filter;
  }
  const config = sqliteBackend.options.parse({ Path: path.resolve(file), ReadOnly: true });
  const backend = sqliteBackend.build('prpt', config, { log: silentLogger(), stateDir: path.dirname(path.resolve(file)), hostname: os.hostname(), env: process.env });
  try {
    await backend.start();
    return await backend.findEvents({ filter, newest: req.newest, oldest: req.oldest, limit });
  } finally {
    await backend.shutdown();
  }
}

async function queryMain(args: string[]): Promise<number> {
  const { values } = parse(args, {
    filter: { type: 'string', short: 'f' },
    since: { type: 'string' },
    until: { type: 'string' },
    limit: { type: 'string', short: 'n' },
    backend: { type: 'string' },
    agent: { type: 'string' },
    'token-file': { type: 'string' },
    sqlite: { type: 'string' },
    json: { type: 'boolean' },
  }, 0);
  if (values.agent !== undefined && values.sqlite !== undefined) throw new UsageError('--agent and --sqlite exclude each other');
  if (values.sqlite !== undefined && values.backend !== undefined) throw new UsageError('--backend names a backend of a running agent; with --sqlite the file is the backend');
  const limit = values.limit === undefined ? 100 : /^\d{1,9}$/.test(values.limit) ? Number(values.limit) : NaN;
  if (Number.isNaN(limit)) throw new UsageError(`--limit: "${values.limit}" is not a non-negative integer`);
  // --until is inclusive (newest), --since exclusive (oldest), as elos findEvents
  const params = new URLSearchParams();
  if (values.filter !== undefined) params.set('filter', values.filter);
  const until = timeArg('until', values.until);
  const since = timeArg('since', values.since);
  if (until) params.set('newest', String(until));
  if (since) params.set('oldest', String(since));
  params.set('limit', String(limit));
  if (values.backend !== undefined) params.set('backend', values.backend);
  const checked = parseEventsQuery(params);
  if (!checked.ok) throw new UsageError(checked.error.replace(/^newest/, '--until').replace(/^oldest/, '--since'));

  const out = values.sqlite !== undefined
    ? await fromSqlite(values.sqlite, checked.request, limit)
    : await fromAgent(values.agent ?? DEFAULT_AGENT, readToken(values['token-file']), params);
  const fmt = values.json ? formatJson : formatText;
  let text = '';
  for (const ev of out.events) text += fmt(ev) + '\n';
  process.stdout.write(text);
  if (out.isTruncated) process.stderr.write(`prpt query: more events match; showing the newest ${out.events.length} (raise --limit, or narrow --since/--until)\n`);
  return 0;
}

function listOf<T extends string>(flag: string, value: string | undefined, ok: (s: string) => s is T, what: string): Set<T> | undefined {
  if (value === undefined) return undefined;
  const out = new Set<T>();
  for (const raw of value.split(',')) {
    const s = raw.trim();
    if (!ok(s)) throw new UsageError(`--${flag}: "${s.slice(0, 60)}" is not ${what}`);
    out.add(s);
  }
  return out;
}

function parseGroup(value: string): { group: string; port: number } {
  const m = /^([0-9.]{7,15})(?::(\d{1,5}))?$/.exec(value);
  const group = m ? m[1]! : '';
  const port = m?.[2] !== undefined ? Number(m[2]) : DEFAULT_PORT;
  if (!m || isIP(group) !== 4) throw new UsageError(`--multicast: "${value.slice(0, 100)}" is not IP[:PORT]`);
  if (!isMulticast(group)) throw new UsageError(`--multicast: ${group} is not an IPv4 multicast group address (224.0.0.0/4)`);
  if (port < 1 || port > 65535) throw new UsageError(`--multicast: port ${port} is not 1-65535`);
  return { group, port };
}

async function monitorMain(args: string[]): Promise<number> {
  const { values } = parse(args, {
    multicast: { type: 'string', short: 'm' },
    interface: { type: 'string', short: 'i' },
    envelope: { type: 'boolean' },
    'key-file': { type: 'string' },
    agent: { type: 'string' },
    'token-file': { type: 'string' },
    severity: { type: 'string', short: 's' },
    system: { type: 'string' },
    'event-type': { type: 'string', short: 't' },
    dev: { type: 'string', short: 'd' },
    filter: { type: 'string', short: 'f' },
    json: { type: 'boolean' },
    count: { type: 'string', short: 'n' },
    ...rootOptions,
  }, 0);
  const viaAgent = values.agent !== undefined;
  if (viaAgent && (values.multicast !== undefined || values.interface !== undefined || values.envelope || values['key-file'] !== undefined)) {
    throw new UsageError('--agent excludes --multicast, --interface, --envelope and --key-file (the stream carries no sequence numbers)');
  }
  let key: Buffer | undefined;
  if (values['key-file'] !== undefined) {
    key = loadKeyFile(values['key-file'], (w) => process.stderr.write(`prpt monitor: warning: ${w}\n`));
  }
  if (values['token-file'] !== undefined && !viaAgent) throw new UsageError('--token-file goes with --agent');
  const match: EventMatch = {};
  if (values.severity !== undefined) {
    const sev = Severity.safeParse(values.severity);
    if (!sev.success) throw new UsageError(`--severity: "${values.severity.slice(0, 30)}" is not one of ${SEVERITIES.join(', ')}`);
    match.severity = sev.data;
  }
  match.systems = listOf('system', values.system, isSystem, `a system (${SYSTEMS.join(', ')})`);
  match.eventTypes = listOf('event-type', values['event-type']?.toUpperCase(), (s): s is string => /^[A-Z][A-Z0-9_]{0,63}$/.test(s), 'an event type (upper snake case, e.g. BLK_IO_ERROR)');
  if (values.filter !== undefined) {
    const c = compileFilter(values.filter);
    if (!c.ok) throw new UsageError(`--filter: ${c.error.message} (position ${c.error.position}, token ${JSON.stringify(c.error.token)})`);
    match.filter = c.filter;
  }
  if (values.dev !== undefined) {
    if (values.dev === '' || values.dev.length > 256) throw new UsageError('--dev: a device name, path, major:minor or wwid');
    // on another host the stack is unknown: then the name itself must match
    match.dev = deviceSet(values.dev, new SysfsResolver(roots(values)).describe(values.dev));
  }
  let limit = Infinity;
  if (values.count !== undefined) {
    if (!/^[1-9]\d{0,8}$/.test(values.count)) throw new UsageError(`--count: "${values.count.slice(0, 30)}" is not a positive integer`);
    limit = Number(values.count);
  }
  const fmt = values.json ? formatJson : formatText;
  const note = (text: string) => process.stderr.write(`prpt monitor: ${escapeControls(text)}\n`);
  const out: MonitorOutput = {
    event(ev, env) {
      process.stdout.write(`${values.envelope && env ? jsonLine({ ...env, event: ev }) : fmt(ev)}\n`);
      return --limit > 0;
    },
    note,
  };
  let onSignal: () => void = () => {};
  const stop = new Promise<void>((resolve) => (onSignal = resolve));
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  let stats;
  if (viaAgent) {
    let url: URL;
    try {
      url = new URL(values.agent!);
    } catch {
      throw new UsageError(`--agent: "${values.agent!.slice(0, 100)}" is not a URL`);
    }
    stats = await monitorAgent({ url, token: readToken(values['token-file']) }, match, out, stop);
  } else {
    const { group, port } = values.multicast !== undefined ? parseGroup(values.multicast) : { group: DEFAULT_GROUP, port: DEFAULT_PORT };
    if (values.interface !== undefined && isIP(values.interface) !== 4) {
      throw new UsageError(`--interface: "${values.interface.slice(0, 100)}" is not an IPv4 address (the local address of the interface to join on)`);
    }
    stats = await monitorMulticast({ group, port, interfaceIp: values.interface ?? DEFAULT_INTERFACE, key }, match, out, stop);
  }
  note(`${stats.received} events received, ${stats.shown} shown, ${stats.lost} lost${key ? `, ${stats.rejected ?? 0} refused by the key checks` : ''}`);
  return 0;
}

await runCli('prpt', USAGE, async () => {
  const [cmd, ...rest] = process.argv.slice(2);
  switch (cmd) {
    case 'monitor':
      return monitorMain(rest);
    case 'parse':
      return parseMain(rest);
    case 'info':
      return infoMain(rest);
    case 'query':
      return queryMain(rest);
    case '-h':
    case '--help':
    case 'help':
      process.stdout.write(USAGE);
      return 0;
    case undefined:
      throw new UsageError('missing command');
    default:
      throw new UsageError(`unknown command "${cmd}"`);
  }
});
