import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import { renderCrds } from '../../../src/generate/crds.ts';

const ROOT = path.resolve(import.meta.dirname, '../../..');
const gen = (...args: string[]) => spawnSync(process.execPath, [path.join(ROOT, 'hack/gen-crds.ts'), ...args], { cwd: ROOT, encoding: 'utf8' });

interface Crd {
  apiVersion: string;
  kind: string;
  metadata: { name: string };
  spec: {
    group: string;
    scope: string;
    names: { kind: string; plural: string; singular: string; shortNames: string[]; categories: string[]; listKind: string };
    versions: {
      name: string;
      served: boolean;
      storage: boolean;
      subresources: { status: Record<string, never> };
      additionalPrinterColumns: { name: string; type: string; jsonPath: string; description: string; priority?: number }[];
    }[];
  };
}

const load = (file: string) => parse(readFileSync(path.join(ROOT, 'crds', file), 'utf8')) as Crd;

describe('hack/gen-crds.ts', () => {
  it('crds/ is up to date (--check)', () => {
    const r = gen('--check');
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /up to date/);
  });
  it('--check fails on a stale or missing file, and a run fixes it', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'peripety-crds-'));
    try {
      let r = gen('--check', '--dir', dir);
      assert.equal(r.status, 1);
      assert.match(r.stderr, /out of date: .*storageeventplugins\.peripety\.io\.yaml/);
      r = gen('--dir', dir);
      assert.equal(r.status, 0, r.stderr);
      assert.deepEqual(readdirSync(dir).sort(), [...renderCrds().keys()].sort());
      assert.equal(gen('--check', '--dir', dir).status, 0);
      const f = path.join(dir, 'storagebackends.peripety.io.yaml');
      writeFileSync(f, readFileSync(f, 'utf8').replace('maxItems: 64', 'maxItems: 65'));
      r = gen('--check', '--dir', dir);
      assert.equal(r.status, 1);
      assert.match(r.stderr, /storagebackends\.peripety\.io\.yaml/);
      writeFileSync(path.join(dir, 'old.peripety.io.yaml'), 'kind: CustomResourceDefinition\n');
      assert.match(gen('--dir', dir).stderr, /old\.peripety\.io\.yaml is not generated/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
  it('refuses unknown arguments', () => {
    assert.equal(gen('--frobnicate').status, 2);
  });
});

describe('the CRDs', () => {
  const cases = [
    { file: 'storageeventplugins.peripety.io.yaml', kind: 'StorageEventPlugin', plural: 'storageeventplugins', short: 'sep', columns: ['Type', 'Plugin', 'State', 'Ready', 'Accepted', 'Failed', 'Command', 'Command-Phase', 'Age'] },
    { file: 'storagebackends.peripety.io.yaml', kind: 'StorageBackend', plural: 'storagebackends', short: 'sbe', columns: ['Backend', 'Run', 'Ready', 'Accepted', 'Failed', 'Command', 'Command-Phase', 'Age'] },
  ];
  for (const c of cases) {
    it(`${c.kind}: group peripety.io, v1alpha1 served and stored, cluster-scoped, status subresource, ${c.short}`, () => {
      const crd = load(c.file);
      assert.equal(crd.apiVersion, 'apiextensions.k8s.io/v1');
      assert.equal(crd.kind, 'CustomResourceDefinition');
      assert.equal(crd.metadata.name, `${c.plural}.peripety.io`);
      assert.equal(crd.spec.group, 'peripety.io');
      assert.equal(crd.spec.scope, 'Cluster');
      assert.deepEqual(crd.spec.names.shortNames, [c.short]);
      assert.equal(crd.spec.names.kind, c.kind);
      assert.equal(crd.spec.names.listKind, `${c.kind}List`);
      assert.ok(crd.spec.names.categories.includes('peripety'));
      assert.equal(crd.spec.versions.length, 1);
      const v = crd.spec.versions[0]!;
      assert.equal(v.name, 'v1alpha1');
      assert.equal(v.served, true);
      assert.equal(v.storage, true);
      assert.deepEqual(v.subresources, { status: {} });
    });
    it(`${c.kind}: printer columns`, () => {
      const cols = load(c.file).spec.versions[0]!.additionalPrinterColumns;
      assert.deepEqual(cols.map((x) => x.name), c.columns);
      for (const col of cols) {
        assert.ok(col.description, col.name);
        assert.match(col.jsonPath, /^\.(spec|status|metadata)\./);
      }
      assert.equal(cols.find((x) => x.name === 'Age')!.type, 'date');
      assert.equal(cols.find((x) => x.name === 'Ready')!.jsonPath, '.status.ready');
    });
  }
});
