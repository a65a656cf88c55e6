// hack/build-dist.mjs (npm run build): the JavaScript users run, made from
// src/ into dist/ (docs/packaging.md, "Compiled JavaScript").
//
// Each src/**/*.ts becomes dist/**/*.js by Node's own type stripper
// (module.stripTypeScriptTypes, mode "strip": the types are replaced by
// blanks, so every line and column stays where it was and a stack trace of
// dist/ points at the right line of src/) and by rewriting relative module
// specifiers that end in ".ts" ('./x.ts' → './x.js': imports, dynamic
// imports, and a `new URL('./worker.ts', import.meta.url)` alike), and an
// import of prom-client's Counter/Gauge/Histogram/Registry only pointed at
// src/metrics/prom-lite.ts (hack/lib/dist-rewrite.mjs). The code
// is erasable-syntax-only (tsconfig's erasableSyntaxOnly), so nothing else
// changes: the same code Node runs from src/, without loading the stripper
// at run time. No compiler and no devDependency: the image's build stage
// runs it with nothing but Node.
//
// dist/.src-hash records the hash of the sources built (bin/entry.mjs): the
// commands run dist/ only while it matches src/. dist/ is replaced whole
// (built in a temporary directory, then renamed), so a failed build leaves
// the old one and its old hash.
//
//   node hack/build-dist.mjs           build dist/
//   node hack/build-dist.mjs --check   exit 0 when dist/ is a build of the current src/, else 1
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { stripTypeScriptTypes } from 'node:module';
import path from 'node:path';
import { BUILD_FORMAT, DIST, HASH_FILE, ROOT, sourceFiles, sourceHash, SRC } from '../bin/entry.mjs';
import { rewriteModule } from './lib/dist-rewrite.mjs';

if (process.argv.includes('--check')) {
  const ok = existsSync(HASH_FILE) && readFileSync(HASH_FILE, 'utf8').trim() === sourceHash();
  console.log(ok ? 'dist/ is a build of the current src/' : 'dist/ is missing or stale: run npm run build');
  process.exit(ok ? 0 : 1);
}

// the warning that stripTypeScriptTypes is experimental says nothing to a build
process.removeAllListeners('warning');

const t0 = performance.now();
const tmp = path.join(ROOT, `.dist-${process.pid}`);
rmSync(tmp, { recursive: true, force: true });
// the hash is taken over exactly the bytes compiled, so it is never that of an edit made during the build
const hash = createHash('sha256').update(BUILD_FORMAT).update('\0');
const files = sourceFiles();
try {
  for (const f of files) {
    const text = readFileSync(path.join(SRC, f));
    hash.update(f).update('\0').update(text).update('\0');
    let js;
    try {
      js = stripTypeScriptTypes(text.toString('utf8'), { mode: 'strip' });
    } catch (err) {
      throw new Error(`src/${f}: ${err.message}`);
    }
    const out = path.join(tmp, f.replace(/\.ts$/, '.js'));
    mkdirSync(path.dirname(out), { recursive: true });
    writeFileSync(out, rewriteModule(js, f));
  }
  writeFileSync(path.join(tmp, '.src-hash'), `${hash.digest('hex')}\n`);
  rmSync(DIST, { recursive: true, force: true });
  renameSync(tmp, DIST);
} catch (err) {
  rmSync(tmp, { recursive: true, force: true });
  console.error(`hack/build-dist.mjs: ${err.message}`);
  process.exit(1);
}
console.error(`hack/build-dist.mjs: ${files.length} files from src/ into dist/ in ${Math.round(performance.now() - t0)} ms`);
