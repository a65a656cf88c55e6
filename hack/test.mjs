// The whole test command (`npm test`, `.ci/run`): prepare what the selected
// tests need (hack/prepare.mjs: as root the Debian packages, then the cached
// envtest binaries, helm and monitoring CRDs — before any test timer starts),
// typecheck, lint, the layering check (hack/layers.mjs), then every test file under test/ with Node's own test
// runner. Arguments narrow the run:
//   node hack/test.mjs [--no-check] [--no-prepare] [PATH…]
//   --no-check    skip typecheck, lint and the layering check
//   --no-prepare  skip hack/prepare.mjs (tests then build a missing tool themselves, inside their timeout)
import { spawnSync } from 'node:child_process';
import { globSync } from 'node:fs';
import path from 'node:path';
import { prepare } from './prepare.mjs';

const root = path.resolve(import.meta.dirname, '..');
const args = process.argv.slice(2);
const flags = new Set(['--no-check', '--no-prepare']);
const noCheck = args.includes('--no-check');
const noPrepare = args.includes('--no-prepare');
const unknown = args.filter((a) => a.startsWith('--') && !flags.has(a));
if (unknown.length > 0) {
  console.error(`hack/test.mjs: unknown option ${unknown.join(', ')} (known: ${[...flags].join(', ')})`);
  process.exit(2);
}
const paths = args.filter((a) => !flags.has(a));

function run(cmd, cmdArgs) {
  console.error(`\n$ ${cmd} ${cmdArgs.join(' ')}`);
  const r = spawnSync(cmd, cmdArgs, { cwd: root, stdio: 'inherit' });
  return r.status ?? 1;
}

// Every test file under test/ (but helpers and fixtures), unless paths were given.
const targets = paths.length > 0
  ? paths.map((p) => (p.endsWith('.ts') ? p : `${p.replace(/\/$/, '')}/**/*.test.ts`))
  : ['test/**/*.test.ts'];
const files = [...new Set(targets.flatMap((t) => globSync(t, { cwd: root })))]
  .map((f) => f.replace(/^\.\//, ''))
  .filter((f) => !/^test\/(helpers|fixtures)\//.test(f))
  .sort();
if (files.length === 0) {
  console.error(`no test files match ${targets.join(' ')}`);
  process.exit(1);
}

if (typeof process.getuid === 'function' && process.getuid() !== 0) {
  console.error('\n*** NOT ROOT: no Debian packages installed, and tests that need the real kernel (/dev/kmsg, loop devices, FUSE, PostgreSQL) will be SKIPPED. CI runs as root. ***\n');
}
if (!noPrepare) {
  try {
    await prepare(files);
  } catch (err) {
    console.error(`\nhack/test.mjs: preparing the tests failed, no test was run:\n${err instanceof Error ? err.message : String(err)}`);
    console.error('(fix the cause above, or run with --no-prepare to let each test fetch what it needs)');
    process.exit(1);
  }
}

let failed = 0;
if (!noCheck) {
  failed |= run('npx', ['tsc', '--noEmit', '-p', 'tsconfig.json']);
  failed |= run('npx', ['eslint', '--max-warnings=0', '.']);
  failed |= run(process.execPath, ['hack/layers.mjs']);
}
// The real-kernel tests (test/root/ and any root/ folder below test/, such as
// test/hostile/root/) share one kernel log, and one of them deliberately
// wraps its ring buffer, which would overwrite the records of a test running
// beside it: they run one file at a time, after the others.
const isSerial = (f) => f.split('/').includes('root');
const parallel = files.filter((f) => !isSerial(f));
const serial = files.filter(isSerial);
const common = ['--test', '--test-timeout=300000'];
if (parallel.length > 0) failed |= run(process.execPath, [...common, '--test-concurrency=2', ...parallel]);
if (serial.length > 0) failed |= run(process.execPath, [...common, '--test-concurrency=1', ...serial]);
process.exit(failed ? 1 : 0);
