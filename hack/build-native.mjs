// Builds the N-API addons (each src/native/<name>.c → build/<name>.node) with
// the machine's C compiler. Every run compiles every addon, so a change to a
// shared header (src/native/*.h, included by the .c files) is always picked up;
// hack/run's install stamp hashes the headers with the .c files for that reason.
// No node-gyp and no header download: N-API headers come with the Node
// binary in use (the npm `node-linux-*` package ships include/node), and an
// N-API addon resolves its symbols from the running node at load time.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
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
const srcDir = path.join(root, 'src', 'native');
mkdirSync(path.join(root, 'build'), { recursive: true });
for (const file of readdirSync(srcDir).filter((f) => f.endsWith('.c')).sort()) {
  const name = file.slice(0, -2);
  const out = path.join(root, 'build', `${name}.node`);
  const args = ['-O2', '-Wall', '-Wextra', '-Werror', '-Wno-unused-parameter', '-std=gnu11', '-fPIC', '-shared',
    `-DNODE_GYP_MODULE_NAME=${name}`, `-I${include}`, '-o', out, path.join(srcDir, file)];
  try {
    execFileSync(cc, args, { stdio: 'inherit' });
  } catch {
    console.error(`build-native: ${cc} failed on ${file} (a C compiler is required: apt-get install gcc)`);
    process.exit(1);
  }
  console.error(`build-native: built ${path.relative(root, out)} with headers from ${include}`);
}
