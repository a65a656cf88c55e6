// The whole test command (`npm test`, `.ci/run`): typecheck, lint, then every
// test file under test/ with Node's own test runner. Arguments narrow the run:
//   node hack/test.mjs [--no-check] [PATH…]
import { spawnSync } from 'node:child_process';
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
const targets = paths.length > 0
  ? paths.map((p) => (p.endsWith('.ts') ? p : `${p.replace(/\/$/, '')}/**/*.test.ts`))
  : ['test/**/*.test.ts'];
failed |= run(process.execPath, ['--test', '--test-concurrency=2', '--test-timeout=300000', ...targets]);
process.exit(failed ? 1 : 0);
