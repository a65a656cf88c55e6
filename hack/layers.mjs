// The layering check (docs/architecture.md, "Layers"): reads the imports of
// every src/**/*.ts file and reports
//   - cycles between source directories (a directory is the folder a file
//     sits in: src/storage/backends is its own directory, not part of
//     src/storage),
//   - cycles between files,
//   - for each entry point, how many src modules it loads at run time and
//     which of the agent-only modules the controller loads.
// Type-only imports (`import type`, `export type`) count for the cycles —
// they are dependencies of the design even though the compiler erases them —
// but not for what an entry point loads at run time.
//
// A regex over the import statements is enough: the project writes them one
// way (eslint and tsc keep them so), and a missed import would show up as a
// smaller graph, never as a false failure.
//
//   node hack/layers.mjs           print the report; exit 1 if a rule below is broken
//   node hack/layers.mjs --report  print the report only, never fail
//   node hack/layers.mjs --map     print what each folder imports (the folder map of docs/architecture.md)
import { globSync, readFileSync } from 'node:fs';
import path from 'node:path';

const root = path.resolve(import.meta.dirname, '..');
const reportOnly = process.argv.includes('--report');

// Each entry point: the modules that start it. `peripety <command>` loads
// src/cli/peripety.ts and, lazily, the command's own module.
const ENTRIES = {
  'peripety agent': ['src/cli/peripety.ts', 'src/cli/agent.ts'],
  'peripety controller': ['src/cli/peripety.ts', 'src/cli/controller.ts'],
  prpt: ['src/cli/prpt.ts'],
};
// What the controller must not load: the agent's collectors, parsers, native
// addons, storage drivers and their databases. A folder's `options.ts` (the
// pure zod schema of its components' options) is what it may load instead.
const CONTROLLER = 'peripety controller';
const AGENT_ONLY_DIRS = ['src/kmsg', 'src/udev', 'src/native', 'src/parsers', 'src/storage/backends'];
const AGENT_ONLY_PACKAGES = ['pg', 'node:sqlite'];

// The rules. Cycles still present are listed here, each with why it is
// allowed; a cycle not listed fails the check, and so does a listed one that
// is gone (so the list only shrinks).
const ALLOWED_DIR_CYCLES = [];
const ALLOWED_FILE_CYCLES = [];
const STRICT_CONTROLLER = true;
// Upward imports, beyond what a cycle would show: the leaves import only
// what is listed (nothing of the project for most), and the composition
// roots — the agent (src/agent), the controller, the CLI — are imported only
// by the folders listed (docs/architecture.md, "Layers").
const LEAVES = {
  'src/events': [],
  'src/fsutil': [],
  'src/log': [],
  'src/native': [],
  'src/contracts': ['src/events', 'src/metrics'],
};
const ROOTS = {
  'src/agent': ['src/cli'],
  'src/controller': ['src/cli'],
  'src/cli': [],
  // build-time code: the generators in hack/ and tests load it, nothing in src/
  'src/generate': [],
};
// What no entry point may load at run time: build-time code (CRD rendering,
// the structural-schema checker, the chart's values).
const BUILD_TIME_DIRS = ['src/generate'];

const files = globSync('src/**/*.ts', { cwd: root }).map((f) => f.split(path.sep).join('/')).sort();
const fileSet = new Set(files);

const IMPORT_RE = /^\s*(import|export)\s+(type\s+)?([^'";]*?\sfrom\s+)?['"]([^'"]+)['"]/gm;
const DYNAMIC_RE = /\bimport\(\s*['"]([^'"]+)['"]\s*\)/g;

/** @type {Map<string, {to: string, type: boolean, dynamic: boolean}[]>} */
const edges = new Map();
/** @type {Map<string, Set<string>>} */
const packages = new Map();

for (const f of files) {
  const text = readFileSync(path.join(root, f), 'utf8');
  const out = [];
  const pkgs = new Set();
  const add = (spec, type, dynamic) => {
    if (!spec.startsWith('.')) {
      if (!type) pkgs.add(spec.startsWith('node:') ? spec : spec.split('/').slice(0, spec.startsWith('@') ? 2 : 1).join('/'));
      return;
    }
    const to = path.posix.normalize(path.posix.join(path.posix.dirname(f), spec));
    if (fileSet.has(to)) out.push({ to, type, dynamic });
  };
  // Only `import type` / `export type` are erased: `import { type A } from`
  // still loads the module (verbatimModuleSyntax keeps an empty import).
  for (const m of text.matchAll(IMPORT_RE)) add(m[4], m[2] !== undefined, false);
  for (const m of text.matchAll(DYNAMIC_RE)) add(m[1], false, true);
  edges.set(f, out);
  packages.set(f, pkgs);
}

const dirOf = (f) => path.posix.dirname(f);
const dirs = [...new Set(files.map(dirOf))].sort();

/** Strongly connected components with more than one member (Tarjan). */
function cycles(nodes, next) {
  let index = 0;
  const idx = new Map();
  const low = new Map();
  const stack = [];
  const on = new Set();
  const out = [];
  const visit = (v) => {
    idx.set(v, index);
    low.set(v, index);
    index++;
    stack.push(v);
    on.add(v);
    for (const w of next(v)) {
      if (!idx.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v), low.get(w)));
      } else if (on.has(w)) {
        low.set(v, Math.min(low.get(v), idx.get(w)));
      }
    }
    if (low.get(v) === idx.get(v)) {
      const scc = [];
      let w;
      do {
        w = stack.pop();
        on.delete(w);
        scc.push(w);
      } while (w !== v);
      if (scc.length > 1) out.push(scc.sort());
    }
  };
  for (const v of nodes) if (!idx.has(v)) visit(v);
  return out.sort((a, b) => b.length - a.length || a[0].localeCompare(b[0]));
}

const fileNext = (f) => [...new Set(edges.get(f).map((e) => e.to))];
const dirEdges = new Map(dirs.map((d) => [d, new Set()]));
for (const f of files) for (const e of edges.get(f)) if (dirOf(e.to) !== dirOf(f)) dirEdges.get(dirOf(f)).add(dirOf(e.to));
const dirCycles = cycles(dirs, (d) => [...dirEdges.get(d)]);
const fileCycles = cycles(files, fileNext);

/** The modules an entry point loads at run time: static value imports from its roots. */
function loads(roots) {
  const seen = new Set();
  const todo = [...roots];
  while (todo.length > 0) {
    const f = todo.pop();
    if (seen.has(f)) continue;
    seen.add(f);
    for (const e of edges.get(f)) if (!e.type && !e.dynamic) todo.push(e.to);
  }
  return seen;
}

const strip = (f) => f.replace(/^src\//, '');
if (process.argv.includes('--map')) {
  for (const d of dirs) {
    const pk = new Set(files.filter((f) => dirOf(f) === d).flatMap((f) => [...packages.get(f)]).filter((p) => !p.startsWith('node:')));
    console.log(`${strip(d)}: ${[...dirEdges.get(d)].map(strip).sort().join(', ') || 'nothing'}${pk.size ? ` [${[...pk].sort().join(', ')}]` : ''}`);
  }
  process.exit(0);
}
const problems = [];
console.log(`layers: ${files.length} modules in ${dirs.length} directories under src/`);
console.log(`layers: ${dirCycles.length} directory cycle(s)${dirCycles.length ? ':' : ''}`);
for (const c of dirCycles) console.log(`  ${c.length} directories: ${c.map(strip).join(' ')}`);
console.log(`layers: ${fileCycles.length} file cycle(s)${fileCycles.length ? ':' : ''}`);
for (const c of fileCycles) console.log(`  ${c.map(strip).join(' <-> ')}`);

for (const [name, roots] of Object.entries(ENTRIES)) {
  const set = loads(roots);
  const pkgs = new Set([...set].flatMap((f) => [...packages.get(f)]));
  console.log(`layers: ${name} loads ${set.size} of ${files.length} modules`);
  const buildTime = [...set].filter((f) => BUILD_TIME_DIRS.some((d) => dirOf(f) === d || dirOf(f).startsWith(`${d}/`)));
  if (buildTime.length > 0) problems.push(`${name} loads build-time code: ${buildTime.map(strip).join(', ')}`);
  if (name === CONTROLLER) {
    const agentOnly = [...set].filter((f) => path.posix.basename(f) !== 'options.ts' && AGENT_ONLY_DIRS.some((d) => dirOf(f) === d || dirOf(f).startsWith(`${d}/`)));
    const agentPkgs = AGENT_ONLY_PACKAGES.filter((p) => pkgs.has(p));
    const byDir = {};
    for (const f of agentOnly) byDir[dirOf(f)] = (byDir[dirOf(f)] ?? 0) + 1;
    const what = [...Object.entries(byDir).map(([d, n]) => `${strip(d)} (${n})`), ...agentPkgs].join(', ');
    console.log(`  agent-only modules it loads: ${what || 'none'}`);
    if (STRICT_CONTROLLER && (agentOnly.length > 0 || agentPkgs.length > 0)) {
      problems.push(`${CONTROLLER} loads agent-only code: ${what}`);
    }
  }
}

for (const [d, targets] of dirEdges) {
  if (Object.hasOwn(LEAVES, d)) {
    for (const t of targets) if (!LEAVES[d].includes(t)) problems.push(`${strip(d)} imports ${strip(t)}, but may import only ${LEAVES[d].map(strip).join(', ') || 'nothing of the project'}`);
  }
  for (const t of targets) {
    if (Object.hasOwn(ROOTS, t) && !ROOTS[t].includes(d)) problems.push(`${strip(d)} imports ${strip(t)}, which ${ROOTS[t].length > 0 ? `only ${ROOTS[t].map(strip).join(', ')} may import` : 'nothing in src/ may import'}`);
  }
}

const key = (c) => c.join(' ');
function checkAllowed(kind, found, allowed) {
  const foundKeys = new Set(found.map(key));
  const allowedKeys = new Set(allowed.map((c) => key([...c].sort())));
  for (const c of found) if (!allowedKeys.has(key(c))) problems.push(`new ${kind} cycle: ${c.map(strip).join(' <-> ')}`);
  for (const k of allowedKeys) if (!foundKeys.has(k)) problems.push(`allowed ${kind} cycle is gone, remove it from hack/layers.mjs: ${k}`);
}
checkAllowed('directory', dirCycles, ALLOWED_DIR_CYCLES);
checkAllowed('file', fileCycles, ALLOWED_FILE_CYCLES);

if (problems.length > 0) {
  for (const p of problems) console.log(`layers: ${reportOnly ? 'would fail' : 'FAIL'}: ${p}`);
  if (!reportOnly) process.exit(1);
} else {
  console.log('layers: ok');
}
