// The image build without a container engine: every stage of the Dockerfile
// is carried out in a temp directory standing for its root filesystem —
// WORKDIR, ENV, COPY from the build context (honouring .dockerignore), COPY
// --from an earlier stage, RUN with /bin/sh in the stage's WORKDIR — on this
// machine's Node 24 and C compiler instead of the node:24 images. Then the
// runtime stage's tree alone runs the ENTRYPOINT and loads every module the
// entry points reach. This catches what the static checks cannot: the
// install script failing on the copied inputs, a RUN that does not work, a
// dependency the production install leaves out, an addon that does not load.
//
// Differences from a real build: the base image's files are this machine's
// (only /usr/bin, node from PATH), absolute paths are rebased under the temp
// root, RUN --mount flags are ignored, and npm uses this machine's cache
// (prefer-offline).
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DockerIgnore, expandSource, fsRepo, parseDockerfile, repoRoot, runtimeClosure, type Stage } from './dockerfile.ts';

const repo = fsRepo();
const df = parseDockerfile(readFileSync(path.join(repoRoot, 'Dockerfile'), 'utf8'));
const ignore = new DockerIgnore(readFileSync(path.join(repoRoot, '.dockerignore'), 'utf8'));
const key = (s: Stage) => s.name ?? String(s.index);

interface Built { root: string; workdir: string; env: Record<string, string>; entrypoint: string[]; log: string[] }

function buildStage(stage: Stage, tmp: string, earlier: Map<string, Built>): Built {
  const base = earlier.get(stage.base);
  const root = path.join(tmp, key(stage));
  if (base) cpSync(base.root, root, { recursive: true });
  else mkdirSync(root, { recursive: true });
  const b: Built = { root, workdir: base?.workdir ?? '/', env: { ...(base?.env ?? {}) }, entrypoint: [], log: [] };
  const inRoot = (p: string) => path.join(root, path.posix.resolve(b.workdir, p));
  for (const ins of stage.instructions) {
    if (ins.cmd === 'WORKDIR') {
      b.workdir = path.posix.resolve(b.workdir, ins.args[0]!);
      mkdirSync(inRoot('.'), { recursive: true });
    } else if (ins.cmd === 'ENV') {
      for (const m of ins.text.matchAll(/(\w+)=("[^"]*"|\S+)/g)) b.env[m[1]!] = m[2]!.replace(/^"|"$/g, '');
    } else if (ins.cmd === 'COPY') {
      const sources = ins.args.slice(0, -1);
      const destRaw = ins.args[ins.args.length - 1]!;
      const destIsDir = destRaw.endsWith('/') || sources.length > 1;
      const dest = inRoot(destRaw);
      const from = ins.flags.from;
      for (const s of sources) {
        if (from !== undefined) {
          const src = earlier.get(from);
          assert.ok(src, `line ${ins.line}: no stage ${from}`);
          const abs = path.join(src.root, path.posix.resolve(src.workdir, s));
          assert.ok(existsSync(abs), `line ${ins.line}: stage ${from} has no ${s}`);
          cpSync(abs, dest, { recursive: true });
          continue;
        }
        const matched = expandSource(repo, s);
        assert.ok(matched.length > 0, `line ${ins.line}: ${s} is not in the repository`);
        for (const p of matched) {
          if (repo.isDir(p)) {
            for (const f of repo.filesUnder(p).filter((x) => !ignore.excludes(x))) {
              const to = path.join(dest, f.slice(p.length + 1));
              mkdirSync(path.dirname(to), { recursive: true });
              cpSync(path.join(repoRoot, f), to);
            }
          } else {
            assert.equal(ignore.excludes(p), false, `line ${ins.line}: ${p} is not in the build context`);
            const to = destIsDir ? path.join(dest, path.basename(p)) : dest;
            mkdirSync(path.dirname(to), { recursive: true });
            cpSync(path.join(repoRoot, p), to);
          }
        }
      }
    } else if (ins.cmd === 'RUN') {
      const script = ins.exec ? ins.args.join(' ') : ins.text;
      const r = spawnSync('/bin/sh', ['-ec', script], {
        cwd: inRoot('.'),
        env: { PATH: `${path.dirname(process.execPath)}:/usr/local/bin:/usr/bin:/bin`, HOME: process.env.HOME ?? os.homedir(), npm_config_prefer_offline: 'true', npm_config_update_notifier: 'false', ...b.env },
        encoding: 'utf8',
        timeout: 240_000,
      });
      b.log.push(`$ ${script}\n${r.stdout}${r.stderr}`);
      assert.equal(r.status, 0, `stage ${key(stage)} line ${ins.line}: RUN failed (${r.status ?? r.signal}):\n${script}\n${r.stdout}\n${r.stderr}`);
    } else if (ins.cmd === 'ENTRYPOINT') {
      b.entrypoint = ins.args;
    }
  }
  return b;
}

describe('the image, built without a container engine', () => {
  let tmp: string;
  let runtime: Built;
  const rebased = (p: string) => path.join(runtime.root, p);

  before(() => {
    tmp = mkdtempSync(path.join(os.tmpdir(), 'prpt-image-'));
    const built = new Map<string, Built>();
    for (const s of df.stages) {
      const t0 = Date.now();
      const b = buildStage(s, tmp, built);
      built.set(key(s), b);
      console.log(`# stage ${key(s)} (${s.base}) built in ${Date.now() - t0} ms`);
    }
    runtime = built.get(key(df.stages[df.stages.length - 1]!))!;
  }, { timeout: 300_000 });
  after(() => {
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  const run = (args: string[]) => {
    const [prog, script, ...rest] = runtime.entrypoint;
    assert.equal(prog, 'node');
    return spawnSync(process.execPath, [rebased(script!), ...rest, ...args], { cwd: rebased(runtime.workdir), env: { PATH: process.env.PATH ?? '', ...runtime.env }, encoding: 'utf8', timeout: 60_000 });
  };

  it('the runtime tree holds production dependencies only, and no test, doc or host build', () => {
    const app = rebased(runtime.workdir);
    const top = readdirSync(app).sort();
    assert.deepEqual(top, ['bin', 'build', 'dist', 'node_modules', 'package-lock.json', 'package.json', 'src']);
    const pkg = JSON.parse(readFileSync(path.join(app, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
    for (const d of Object.keys(pkg.dependencies)) assert.ok(existsSync(path.join(app, 'node_modules', d, 'package.json')), `dependency ${d} installed`);
    // what the lock file marks dev-only (devDependencies and what only they need) must be absent
    const lock = JSON.parse(readFileSync(path.join(app, 'package-lock.json'), 'utf8')) as { packages: Record<string, { dev?: boolean }> };
    const devOnly = Object.entries(lock.packages).filter(([p, v]) => p.startsWith('node_modules/') && v.dev === true).map(([p]) => p);
    assert.ok(devOnly.some((p) => p === 'node_modules/typescript'), 'the lock file marks typescript dev-only');
    assert.deepEqual(devOnly.filter((p) => existsSync(path.join(app, p))), [], 'dev-only packages in the image');
    assert.deepEqual(readdirSync(path.join(app, 'build')).sort(), readdirSync(path.join(repoRoot, 'src/native')).filter((f) => f.endsWith('.c')).map((f) => f.replace(/\.c$/, '.node')).sort());
    const files = execFileSync('find', [app, '-path', path.join(app, 'node_modules'), '-prune', '-o', '-type', 'f', '-print'], { encoding: 'utf8' }).trim().split('\n');
    assert.deepEqual(files.filter((f) => /\.test\.ts$|\/test\/|\/docs\//.test(f)), []);
    console.log(`# runtime tree: ${files.length} files besides node_modules (${execFileSync('du', ['-sh', app], { encoding: 'utf8' }).split('\t')[0]} with it)`);
  });

  it('the ENTRYPOINT runs: --version, help, print-default-config', () => {
    const v = run(['--version']);
    assert.equal(v.status, 0, v.stderr);
    assert.match(v.stdout, /^peripety \d+\.\d+\.\d+/);
    const h = run(['help']);
    assert.equal(h.status, 0, h.stderr);
    assert.match(h.stdout, /peripety agent/);
    assert.match(h.stdout, /peripety controller/);
    const c = run(['print-default-config']);
    assert.equal(c.status, 0, c.stderr);
    assert.match(c.stdout, /\[kmsg\]/);
  });

  it('the controller and agent entry points refuse bad usage with their own messages (their modules load)', () => {
    const c = run(['controller', '--no-such-flag']);
    assert.equal(c.status, 2, `${c.stdout}${c.stderr}`);
    assert.match(c.stderr, /no-such-flag/);
    const a = run(['agent', '--no-such-flag']);
    assert.equal(a.status, 2, `${a.stdout}${a.stderr}`);
    assert.match(a.stderr, /no-such-flag/);
  });

  it('every module the entry points reach loads from the runtime tree alone (addons included)', () => {
    const pkg = JSON.parse(readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { bin: Record<string, string> };
    const closure = runtimeClosure(repo, Object.values(pkg.bin));
    // the CLI modules run their main on import; everything else only defines things
    const mods = closure.files.filter((f) => f.startsWith('src/') && !f.startsWith('src/cli/'));
    const script = path.join(tmp, 'load-all.mjs');
    writeFileSync(script, `${mods.map((m) => `await import(${JSON.stringify(rebased(path.posix.join(runtime.workdir, m)))});`).join('\n')}
for (const f of (await import('node:fs')).readdirSync(${JSON.stringify(rebased(path.posix.join(runtime.workdir, 'build')))})) {
  (await import('node:module')).createRequire(import.meta.url)(${JSON.stringify(rebased(path.posix.join(runtime.workdir, 'build')))} + '/' + f);
}
console.log('loaded', ${mods.length});
`);
    const r = spawnSync(process.execPath, [script], { cwd: rebased(runtime.workdir), env: { PATH: process.env.PATH ?? '', NODE_ENV: 'production' }, encoding: 'utf8', timeout: 60_000 });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`^loaded ${mods.length}`));
    console.log(`# ${mods.length} modules and ${readdirSync(rebased(path.posix.join(runtime.workdir, 'build'))).length} addons loaded from the runtime tree`);
  });
});
