// Which code `bin/peripety` and `bin/prpt` run (issue 14, docs/packaging.md
// "Compiled JavaScript"): the JavaScript that hack/build-dist.mjs made from
// src/ into dist/, or the TypeScript sources themselves.
//
// Why both: running the .ts sources makes Node load its TypeScript stripper
// (≈18 MiB of resident memory for the life of the process), so what users run
// is dist/. But a developer who edits src/ and runs bin/peripety must never
// run the old dist/ silently: dist/.src-hash holds a hash of the sources it
// was built from, and when it differs from the sources now (or dist/ is
// absent) the sources run. Hashing src/ costs a few milliseconds at start.
//
// PERIPETY_ENTRY=src forces the sources; PERIPETY_ENTRY=dist demands dist/
// and fails when it is missing or stale (the image and the storm bench set
// it, so that they never measure or ship the wrong thing by accident).
// This file is plain JavaScript on purpose: it runs before any TypeScript.
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

export const ROOT = path.resolve(import.meta.dirname, '..');
export const SRC = path.join(ROOT, 'src');
export const DIST = path.join(ROOT, 'dist');
/** dist/.src-hash: the hash of the sources dist/ was built from */
export const HASH_FILE = path.join(DIST, '.src-hash');
/** bumped when hack/build-dist.mjs changes what it emits, so an older dist/ counts as stale */
export const BUILD_FORMAT = 'strip-types-2';

/** Every src/**\/*.ts file, relative to src/, sorted (the build's input). */
export function sourceFiles(dir = SRC, rel = '') {
  const out = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const r = rel ? `${rel}/${e.name}` : e.name;
    if (e.isDirectory()) out.push(...sourceFiles(path.join(dir, e.name), r));
    else if (e.isFile() && e.name.endsWith('.ts')) out.push(r);
  }
  return out.sort();
}

/** The hash of the build format, every source path and its content. */
export function sourceHash() {
  const h = createHash('sha256').update(BUILD_FORMAT).update('\0');
  for (const f of sourceFiles()) h.update(f).update('\0').update(readFileSync(path.join(SRC, f))).update('\0');
  return h.digest('hex');
}

/**
 * 'dist' when dist/ holds a build of the current sources (or there are no
 * sources at all), else 'src'. Throws under PERIPETY_ENTRY=dist when dist/
 * cannot be used.
 */
export function chooseEntry(env = process.env) {
  const want = env.PERIPETY_ENTRY;
  if (want === 'src') return 'src';
  if (want !== undefined && want !== 'dist' && want !== '') throw new Error(`PERIPETY_ENTRY=${want}: want "src" or "dist"`);
  let why;
  if (!existsSync(HASH_FILE)) why = 'dist/ is not built (npm run build)';
  else if (!existsSync(SRC)) return 'dist';
  else if (readFileSync(HASH_FILE, 'utf8').trim() !== sourceHash()) why = 'dist/ was built from other sources than src/ now (npm run build)';
  else return 'dist';
  if (want === 'dist') throw new Error(`PERIPETY_ENTRY=dist: ${why}`);
  return 'src';
}

/**
 * The V8 flags and the environment the node agent runs with (docs/performance.md
 * "Memory", measured under the storm bench): a young generation capped at
 * 8 MB semi-spaces (V8 grows them to 64 MB under a storm and keeps them;
 * smaller caps promoted so much to the old generation that its collections
 * made the agent miss kernel records), an old generation that grows by 50 %
 * over what survived its last collection instead of V8's up to 4× (the
 * storm's live heap is ~25 MB, its old generation reached 86 MB), and at
 * most two glibc malloc arenas (one per thread otherwise, each keeping its
 * own free memory). Not NODE_OPTIONS: node refuses --heap-growing-percent
 * there.
 * PERIPETY_NODE_FLAGS replaces the flags (space-separated; empty: none).
 */
export const AGENT_NODE_FLAGS = ['--max-semi-space-size=8', '--heap-growing-percent=50'];
export const AGENT_ENV = { MALLOC_ARENA_MAX: '2' };
/** set in the environment of the node that bin/peripety started with AGENT_NODE_FLAGS: it does not start another */
const TUNED_MARK = 'PERIPETY_NODE_TUNED';

/**
 * For `peripety agent`: replace this process (same pid, same descriptors)
 * by node with the agent's flags and environment, unless it already runs with
 * them. V8 reads its heap flags when it starts, and glibc reads
 * MALLOC_ARENA_MAX at its first malloc, so neither can be set from inside a
 * running process. A flag the user already gave (on the command line or in
 * NODE_OPTIONS) or a variable already set is left as the user gave it.
 * PERIPETY_NODE_TUNING=off: run as started.
 */
export function execTuned(env = process.env) {
  if (env[TUNED_MARK] === '1' || env.PERIPETY_NODE_TUNING === 'off' || typeof process.execve !== 'function') return;
  const given = `${process.execArgv.join(' ')} ${env.NODE_OPTIONS ?? ''}`;
  const wanted = env.PERIPETY_NODE_FLAGS !== undefined ? env.PERIPETY_NODE_FLAGS.split(/\s+/).filter(Boolean) : AGENT_NODE_FLAGS;
  const flags = wanted.filter((f) => !given.includes(f.split('=')[0]));
  const extra = Object.fromEntries(Object.entries(AGENT_ENV).filter(([k]) => env[k] === undefined));
  const argv = [process.execPath, ...flags, ...process.execArgv, process.argv[1], ...process.argv.slice(2)];
  process.execve(process.execPath, argv, { ...env, ...extra, [TUNED_MARK]: '1' });
}

/**
 * chooseEntry for the command `name`, or exit 2 with the reason on stderr.
 * 'dist': import distEntry(name); 'src': the caller imports
 * ../src/cli/<name>.ts itself, a literal import that the image check
 * (test/unit/packaging) follows.
 */
export function entryOrExit(name) {
  try {
    return chooseEntry();
  } catch (err) {
    process.stderr.write(`${name}: ${err.message}\n`);
    process.exit(2);
  }
}

/** The URL of dist/cli/<name>.js. */
export function distEntry(name) {
  return new URL(`../dist/cli/${name}.js`, import.meta.url).href;
}
