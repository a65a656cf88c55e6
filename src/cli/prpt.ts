// `prpt`: the user's tool. `prpt parse` (offline kernel text → events),
// `prpt info <device>` (identity and stack).
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { readBootId } from '../daemon/agent.ts';
import { bootEpochUs } from '../daemon/clock.ts';
import { parseOffline } from '../daemon/offline.ts';
import { SysfsResolver } from '../device/resolver.ts';
import { DEFAULT_ROOTS, type Identity } from '../device/types.ts';
import { formatJson, formatText } from '../receivers/format.ts';
import { parse, runCli, UsageError } from './args.ts';

const USAGE = `usage:
  prpt parse [--json] [--no-resolve] [--sysfs-root DIR] [--dev-root DIR] [--boot-id ID] [FILE|-]
      offline: /dev/kmsg records or dmesg text in (a file, or stdin), storage events out
  prpt info [--json] [--sysfs-root DIR] [--dev-root DIR] [--mountinfo FILE] <device>
      identity and stack of a block device: sdb, /dev/sdb, 8:16, 2:0:0:0, dm-0, a dm name
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

function readInput(file: string): string {
  try {
    return readFileSync(file === '-' ? 0 : file, 'latin1');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new Error(`cannot read ${file === '-' ? 'standard input' : file}: ${code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a directory' : (code ?? (err as Error).message)}`);
  }
}

async function parseMain(args: string[]): Promise<number> {
  const { values, positionals } = parse(args, {
    json: { type: 'boolean' },
    'no-resolve': { type: 'boolean' },
    'boot-id': { type: 'string' },
    ...rootOptions,
  }, 1);
  const file = positionals[0] ?? '-';
  const name = file === '-' ? 'stdin' : file;
  const text = readInput(file);
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
  parseOffline(text, {
    hostname: os.hostname(),
    bootId,
    bootEpochUs: bootEpochUs(),
    resolver: values['no-resolve'] ? null : new SysfsResolver(roots(values)),
    source: name,
  }, (ev) => {
    out += fmt(ev) + '\n';
    if (out.length > 1 << 16) {
      process.stdout.write(out);
      out = '';
    }
  }, (e) => {
    errors++;
    if (errors <= 20) process.stderr.write(`prpt parse: ${name}:${e.line}: skipped: ${e.error}\n`);
  });
  process.stdout.write(out);
  if (errors > 20) process.stderr.write(`prpt parse: ${errors} lines skipped in all\n`);
  return 0;
}

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
    process.stdout.write(JSON.stringify(info, null, 2) + '\n');
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
  process.stdout.write(lines.join('\n') + '\n');
  return 0;
}

await runCli('prpt', USAGE, async () => {
  const [cmd, ...rest] = process.argv.slice(2);
  switch (cmd) {
    case 'parse':
      return parseMain(rest);
    case 'info':
      return infoMain(rest);
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
