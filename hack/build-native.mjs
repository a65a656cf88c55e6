// Builds the N-API addon (src/native/*.c) with the machine's C compiler.
// No node-gyp and no header download: N-API headers come with the Node
// binary in use (the npm `node-linux-*` package ships include/node), and an
// N-API addon resolves its symbols from the running node at load time.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';

const root = path.resolve(import.meta.dirname, '..');
const candidates = [
  path.resolve(path.dirname(process.execPath), '..', 'include', 'node'),
  process.env.npm_config_nodedir && path.join(process.env.npm_config_nodedir, 'include', 'node'),
  '/usr/local/include/node',
  '/usr/include/node',
].filter(Boolean);
const include = candidates.find((dir) => existsSync(path.join(dir, 'node_api.h')) && existsSync(path.join(dir, 'uv.h')));
if (!include) {
  console.error(`build-native: no Node headers (node_api.h, uv.h) found in: ${candidates.join(', ')}`);
  process.exit(1);
}
const cc = process.env.CC || 'cc';
const out = path.join(root, 'build', 'peripety_native.node');
mkdirSync(path.dirname(out), { recursive: true });
const args = ['-O2', '-Wall', '-Wextra', '-Werror', '-Wno-unused-parameter', '-std=gnu11', '-fPIC', '-shared',
  '-DNODE_GYP_MODULE_NAME=peripety_native', `-I${include}`, '-o', out, path.join(root, 'src', 'native', 'peripety_native.c')];
try {
  execFileSync(cc, args, { stdio: 'inherit' });
} catch {
  console.error(`build-native: ${cc} failed (a C compiler is required: apt-get install gcc)`);
  process.exit(1);
}
console.error(`build-native: built ${path.relative(root, out)} with headers from ${include}`);
