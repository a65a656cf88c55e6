// The specifier rewriting of hack/build-dist.mjs, on code whose types are
// already stripped (a module of its own so that test/unit/build-dist.test.ts
// can check it).

/** What src/metrics/prom-lite.ts exports: an import of these names only from 'prom-client' may use it. */
export const PROM_LITE_NAMES = ['Registry', 'Counter', 'Gauge', 'Histogram'];
/** src/metrics/prom-lite.ts, relative to src/ */
export const PROM_LITE = 'metrics/prom-lite.ts';

/** The relative specifier from the module `from` (relative to src/) to `to` (relative to src/). */
function relativeSpec(from, to) {
  const a = from.split('/').slice(0, -1);
  const b = to.split('/');
  let i = 0;
  while (i < a.length && i < b.length - 1 && a[i] === b[i]) i++;
  const up = a.length - i;
  return `${up === 0 ? './' : '../'.repeat(up)}${b.slice(i).join('/')}`;
}

/**
 * The module `file` (its path relative to src/, e.g. "agent/storage.ts"),
 * stripped of its types, with
 *  - relative specifiers ending in ".ts" in quotes ending in ".js" instead
 *    ('./x.ts' → './x.js': static and dynamic imports, new URL('./w.ts', …));
 *  - `import { … } from 'prom-client'` naming only PROM_LITE_NAMES pointed at
 *    prom-lite.js (src/metrics/prom-lite.ts says why).
 */
export function rewriteModule(code, file) {
  let out = code.replace(/(['"])(\.\.?\/[^'"\n]*?)\.ts\1/g, '$1$2.js$1');
  if (file !== PROM_LITE) {
    out = out.replace(/\bimport\s*\{([^}]*)\}\s*from\s*(['"])prom-client\2/g, (stmt, names) => {
      const used = names.split(',').map((n) => n.trim()).filter((n) => n !== '');
      if (used.length === 0 || !used.every((n) => PROM_LITE_NAMES.includes(n))) return stmt;
      return stmt.replace(/(['"])prom-client\1/, `'${relativeSpec(file, PROM_LITE.replace(/\.ts$/, '.js'))}'`);
    });
  }
  return out;
}
