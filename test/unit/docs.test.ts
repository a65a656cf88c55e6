// The repository stands alone: a fresh clone has nothing beside it, so no
// file may point at design documents outside it, and the documents that hold
// the design stay in step with the code they describe.
import assert from 'node:assert/strict';
import { existsSync, globSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { CATALOG, EVENT_TYPES } from '../../src/events/catalog.ts';
import { SYSTEMS } from '../../src/events/schema.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const read = (f: string): string => readFileSync(path.join(ROOT, f), 'utf8');

/** Every text file of the repository that people or tools read (not dependencies or build output). */
function repoFiles(): string[] {
  const patterns = ['README.md', 'Dockerfile', '.ci/*', '.github/**/*.yaml', 'src/**/*.{ts,c,h}', 'test/**/*.{ts,py,jsonl,txt,md}', 'hack/**/*', 'docs/**/*.md',
    'bench/**/*.ts', 'charts/**/*.{yaml,tpl,txt,json,md}', 'crds/**/*', 'manifests/**/*'];
  return [...new Set(patterns.flatMap((p) => globSync(p, { cwd: ROOT })))].filter((f) => !f.startsWith('test/unit/docs.test.ts')).sort();
}

describe('the repository stands alone', () => {
  it('no file points outside the repository for its design or data (../shared, the old design file names)', () => {
    const outside = /\.\.\/shared\b|shared\/(design|data)\b|\b(ARCHITECTURE|EVENTS|STORAGE|TOOLS)\.md\b/;
    const hits: string[] = [];
    for (const f of repoFiles()) {
      let text: string;
      try {
        text = read(f);
      } catch {
        continue; // a directory matched by a pattern
      }
      text.split('\n').forEach((line, i) => {
        if (outside.test(line)) hits.push(`${f}:${i + 1}: ${line.trim().slice(0, 120)}`);
      });
    }
    assert.deepEqual(hits, [], 'point these at docs/architecture.md, docs/events.md, docs/storage.md or test/fixtures/');
  });

  it('the design documents exist, and every relative link in README.md and docs/ leads to a file', () => {
    for (const f of ['docs/architecture.md', 'docs/events.md', 'docs/storage.md', 'test/fixtures/README.md', 'test/fixtures/kmsg-sample.txt']) {
      assert.ok(existsSync(path.join(ROOT, f)), `${f} is missing`);
    }
    const broken: string[] = [];
    for (const f of ['README.md', ...globSync('docs/*.md', { cwd: ROOT }), 'test/fixtures/README.md']) {
      for (const m of read(f).matchAll(/\]\(([^)\s]+)\)/g)) {
        const target = m[1]!.split('#')[0]!;
        if (target === '' || /^[a-z]+:/.test(target)) continue;
        if (!existsSync(path.resolve(ROOT, path.dirname(f), target))) broken.push(`${f}: ${m[1]}`);
      }
    }
    assert.deepEqual(broken, []);
  });
});

describe('docs/events.md agrees with the code', () => {
  const doc = read('docs/events.md');

  it('lists every event type of the catalog with its system and messageCode', () => {
    const problems: string[] = [];
    for (const t of EVENT_TYPES) {
      const row = doc.split('\n').find((l) => l.startsWith(`| \`${t}\` |`));
      if (!row) {
        problems.push(`${t}: no row`);
        continue;
      }
      const code = row.split('|')[2]!.trim().replace('¹', '');
      if (code !== String(CATALOG[t].messageCode)) problems.push(`${t}: code ${code}, the catalog says ${CATALOG[t].messageCode}`);
      // the row sits under the heading of its system
      const before = doc.slice(0, doc.indexOf(row));
      const heading = [...before.matchAll(/^### (\S+)$/gm)].pop()?.[1];
      if (heading !== CATALOG[t].system) problems.push(`${t}: under "### ${heading}", the catalog says ${CATALOG[t].system}`);
    }
    const documented = [...doc.matchAll(/^\| `([A-Z][A-Z0-9_]+)` \|/gm)].map((m) => m[1]!);
    for (const t of documented) if (!(t in CATALOG)) problems.push(`${t}: documented, not in the catalog`);
    assert.deepEqual(problems, []);
  });

  it('names every system of the wire schema', () => {
    for (const s of SYSTEMS) assert.ok(doc.includes(`\`${s}\``), `system ${s} is not in docs/events.md`);
  });
});
