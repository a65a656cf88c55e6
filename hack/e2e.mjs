// `npm run e2e`: the end-to-end tests of test/e2e/ (*.e2e.ts) on a real node
// (hack/node.sh), as root. Prepares first, outside any test timer — the
// Debian packages, the Go-built tools and the image (hack/prepare.mjs: the
// cold path builds kubelet & co. and debootstraps the image's base, with
// progress) — then runs the files one at a time: they share one kernel log
// and one node.
//   node hack/e2e.mjs [FILE…]
import { spawnSync } from 'node:child_process';
import { globSync } from 'node:fs';
import path from 'node:path';
import { prepare } from './prepare.mjs';

const root = path.resolve(import.meta.dirname, '..');
const args = process.argv.slice(2);
const bad = args.filter((a) => a.startsWith('-'));
if (bad.length > 0) {
  console.error(`hack/e2e.mjs: unknown option ${bad.join(', ')} (usage: node hack/e2e.mjs [FILE…])`);
  process.exit(2);
}
const files = args.length > 0 ? args : globSync('test/e2e/*.e2e.ts', { cwd: root }).sort();
if (files.length === 0) {
  console.error('hack/e2e.mjs: no test/e2e/*.e2e.ts');
  process.exit(1);
}
if (typeof process.getuid === 'function' && process.getuid() !== 0) {
  console.error('\n*** NOT ROOT: the end-to-end tests need root (namespaces, cgroups, containerd, /dev/kmsg) and will be SKIPPED. CI runs them as root. ***\n');
} else {
  try {
    await prepare(files);
  } catch (err) {
    console.error(`\nhack/e2e.mjs: preparing failed, no test was run:\n${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  }
}
const t0 = Date.now();
const r = spawnSync(process.execPath, ['--test', '--test-concurrency=1', '--test-timeout=2400000', ...files], { cwd: root, stdio: 'inherit' });
console.error(`hack/e2e.mjs: ${r.status === 0 ? 'passed' : 'FAILED'} in ${((Date.now() - t0) / 1000).toFixed(0)}s`);
process.exit(r.status ?? 1);
