// The whole test command (`npm test`, `.ci/run`): typecheck, lint, then every
// test file under test/ with Node's own test runner. Arguments narrow the run:
//   node hack/test.mjs [--no-check] [PATH…]
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import path from 'node:path';

const root = path.resolve(import.meta.dirname, '..');
const args = process.argv.slice(2);
const noCheck = args.includes('--no-check');
const paths = args.filter((a) => a !== '--no-check');

function run(cmd, cmdArgs) {
  console.error(`\n$ ${cmd} ${cmdArgs.join(' ')}`);
  const r = spawnSync(cmd, cmdArgs, { cwd: root, stdio: 'inherit' });
  return r.status ?? 1;
}

let failed = 0;
if (!noCheck) {
  failed |= run('npx', ['tsc', '--noEmit', '-p', 'tsconfig.json']);
  failed |= run('npx', ['eslint', '--max-warnings=0', '.']);
}
if (typeof process.getuid === 'function' && process.getuid() !== 0) {
  console.error('\n*** NOT ROOT: tests that need the real kernel (/dev/kmsg, loop devices, FUSE) will be SKIPPED. CI runs as root. ***\n');
}
// Every test directory but helpers and fixtures, unless paths were given.
const targets = paths.length > 0
  ? paths.map((p) => (p.endsWith('.ts') ? p : `${p.replace(/\/$/, '')}/**/*.test.ts`))
  : readdirSync(path.join(root, 'test'), { withFileTypes: true })
    .filter((d) => d.isDirectory() && !['helpers', 'fixtures'].includes(d.name))
    .map((d) => `test/${d.name}/**/*.test.ts`);
// The real-kernel tests share one kernel log, and one of them deliberately
// wraps its ring buffer, which would overwrite the records of a test running
// beside it: they run one file at a time, after the others.
const isRoot = (t) => t.replace(/^\.\//, '').startsWith('test/root');
const parallel = targets.filter((t) => !isRoot(t));
const serial = targets.filter(isRoot);
const common = ['--test', '--test-timeout=300000'];
if (parallel.length > 0) failed |= run(process.execPath, [...common, '--test-concurrency=2', ...parallel]);
if (serial.length > 0) failed |= run(process.execPath, [...common, '--test-concurrency=1', ...serial]);
process.exit(failed ? 1 : 0);
