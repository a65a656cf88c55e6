// The compiled JavaScript (hack/build-dist.mjs, bin/entry.mjs): the
// specifier rewriting, prom-lite's classes, and — on a copy of the tree — a
// build that bin/peripety runs, a source edit that makes it run src/ again
// (never the stale dist/), PERIPETY_ENTRY=dist refusing a stale build.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { appendFileSync, cpSync, existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import * as prom from 'prom-client';
// @ts-expect-error: plain JavaScript without declarations
import { PROM_LITE_NAMES, rewriteModule } from '../../hack/lib/dist-rewrite.mjs';
import * as lite from '../../src/metrics/prom-lite.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const rewrite = rewriteModule as (code: string, file: string) => string;

describe('hack/build-dist.mjs', () => {
  it('rewrites relative .ts specifiers to .js, and nothing else', () => {
    const code = [
      "import { a } from './a.ts';",
      "import b from '../x/b.ts';",
      'const c = await import("./c.ts");',
      "const w = new URL('./worker.ts', import.meta.url);",
      "import z from 'zod';",
      "const s = 'file.ts';",
      "const t = 'src/x.ts is a path in a message';",
    ].join('\n');
    assert.equal(rewrite(code, 'agent/x.ts'), [
      "import { a } from './a.js';",
      "import b from '../x/b.js';",
      'const c = await import("./c.js");',
      "const w = new URL('./worker.js', import.meta.url);",
      "import z from 'zod';",
      "const s = 'file.ts';",
      "const t = 'src/x.ts is a path in a message';",
    ].join('\n'));
  });

  it("points imports of prom-client's four classes at prom-lite, and only those", () => {
    assert.equal(rewrite("import { Counter, Gauge,               } from 'prom-client';", 'agent/storage.ts'), "import { Counter, Gauge,               } from '../metrics/prom-lite.js';");
    assert.equal(rewrite("import { Registry } from 'prom-client';", 'metrics/agent-metrics.ts'), "import { Registry } from './prom-lite.js';");
    assert.equal(rewrite("import { Counter } from 'prom-client';", 'receivers/k8s-events/index.ts'), "import { Counter } from '../../metrics/prom-lite.js';");
    const other = "import { Counter, collectDefaultMetrics } from 'prom-client';";
    assert.equal(rewrite(other, 'controller/metrics.ts'), other);
    assert.equal(rewrite("import * as p from 'prom-client';", 'x.ts'), "import * as p from 'prom-client';");
  });

  it("prom-lite's classes are prom-client's own", () => {
    assert.deepEqual([...PROM_LITE_NAMES].sort(), Object.keys(lite).sort());
    for (const n of PROM_LITE_NAMES as string[]) assert.equal((lite as Record<string, unknown>)[n], (prom as Record<string, unknown>)[n], n);
  });

  describe('on a copy of the tree', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'prpt-dist-'));
    after(() => rmSync(dir, { recursive: true, force: true }));
    for (const p of ['package.json', 'bin', 'src', 'hack/build-dist.mjs', 'hack/lib/dist-rewrite.mjs']) cpSync(path.join(ROOT, p), path.join(dir, p), { recursive: true });
    symlinkSync(path.join(ROOT, 'node_modules'), path.join(dir, 'node_modules'));
    symlinkSync(path.join(ROOT, 'build'), path.join(dir, 'build'));
    const node = (args: string[], env: Record<string, string> = {}) => spawnSync(process.execPath, args, { cwd: dir, encoding: 'utf8', env: { ...process.env, PERIPETY_ENTRY: '', ...env } });
    /** which code `peripety` ran: the module it loaded, from a load hook */
    const ran = (env: Record<string, string> = {}) => {
      const r = node(['--import', 'data:text/javascript,import{registerHooks}from"node:module";registerHooks({load(u,c,n){if(u.includes("/cli/peripety."))process.stderr.write("LOADED "+u+"\\n");return n(u,c)}})', 'bin/peripety', '--version'], env);
      return { status: r.status, out: r.stdout, err: r.stderr, loaded: /LOADED \S+\/(src|dist)\/cli\/peripety\.(ts|js)/.exec(r.stderr)?.[1] };
    };

    it('without dist/: the sources; PERIPETY_ENTRY=dist refuses', () => {
      assert.equal(ran().loaded, 'src');
      const r = ran({ PERIPETY_ENTRY: 'dist' });
      assert.equal(r.status, 2);
      assert.match(r.err, /PERIPETY_ENTRY=dist: dist\/ is not built/);
    });

    it('built: dist/, the same output; --check agrees', () => {
      execFileSync(process.execPath, ['hack/build-dist.mjs'], { cwd: dir, stdio: 'pipe' });
      assert.ok(existsSync(path.join(dir, 'dist/cli/peripety.js')));
      assert.ok(!readFileSync(path.join(dir, 'dist/cli/agent.js'), 'utf8').includes(".ts'"), 'no .ts specifier left');
      const r = ran();
      assert.equal(r.loaded, 'dist');
      assert.equal(r.out, 'peripety 0.1.0\n');
      assert.equal(node(['hack/build-dist.mjs', '--check']).status, 0);
      assert.equal(ran({ PERIPETY_ENTRY: 'src' }).loaded, 'src');
    });

    it('a source edited after the build: the sources run, never the stale dist/', () => {
      appendFileSync(path.join(dir, 'src/cli/args.ts'), '\n// edited\n');
      assert.equal(ran().loaded, 'src');
      const r = ran({ PERIPETY_ENTRY: 'dist' });
      assert.equal(r.status, 2);
      assert.match(r.err, /built from other sources/);
      assert.equal(node(['hack/build-dist.mjs', '--check']).status, 1);
      execFileSync(process.execPath, ['hack/build-dist.mjs'], { cwd: dir, stdio: 'pipe' });
      assert.equal(ran().loaded, 'dist');
    });
  });
});
