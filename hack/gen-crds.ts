// Write the CustomResourceDefinitions in crds/ from the zod schemas
// (src/crd/schemas.ts → src/generate/crds.ts).
//   hack/run node hack/gen-crds.ts           regenerate crds/*.yaml
//   hack/run node hack/gen-crds.ts --check   exit 1 when crds/ is out of date
//   --dir DIR                                another directory than crds/ (tests)
// Refuses to write a schema that is not structural: the API server would
// mark the CRD NonStructuralSchema (or refuse it).
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { openApiSchemaOf, RESOURCES, renderCrds } from '../src/generate/crds.ts';
import { structuralProblems } from '../src/generate/structural.ts';

let opts: { check: boolean; dir: string };
try {
  const { values } = parseArgs({
    options: { check: { type: 'boolean', default: false }, dir: { type: 'string', default: path.resolve(import.meta.dirname, '..', 'crds') } },
    strict: true,
  });
  opts = { check: values.check, dir: path.resolve(values.dir) };
} catch (err) {
  console.error(`gen-crds: ${(err as Error).message} (usage: gen-crds.ts [--check] [--dir DIR])`);
  process.exit(2);
}
const { check, dir } = opts;
const shown = path.relative(process.cwd(), dir) || '.';

let bad = false;
for (const r of RESOURCES) {
  const problems = structuralProblems(openApiSchemaOf(r));
  for (const p of problems) console.error(`gen-crds: ${r.kind}: not structural: ${p}`);
  if (problems.length > 0) bad = true;
}
if (bad) process.exit(1);

const stale: string[] = [];
const files = renderCrds();
// a CRD file nothing generates any more (a renamed resource) would still be applied with the rest
const orphans = existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.yaml') && !files.has(f)) : [];
for (const f of orphans) console.error(`gen-crds: ${path.join(shown, f)} is not generated from any schema: remove it`);
if (orphans.length > 0 && check) stale.push(...orphans.map((f) => path.join(shown, f)));
for (const [name, text] of files) {
  const file = path.join(dir, name);
  const current = existsSync(file) ? readFileSync(file, 'utf8') : null;
  if (current === text) continue;
  if (check) stale.push(path.join(shown, name));
  else {
    writeFileSync(file, text);
    console.log(`gen-crds: wrote ${path.join(shown, name)}`);
  }
}
if (check && stale.length > 0) {
  console.error(`gen-crds: out of date: ${stale.join(', ')}; run hack/run node hack/gen-crds.ts`);
  process.exit(1);
}
if (check) console.log(`gen-crds: ${shown} is up to date`);
