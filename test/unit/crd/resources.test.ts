// Invalid resources and which layer refuses them: "schema" (the API server,
// from the generated openAPIV3Schema, checked with a validator of the subset
// of OpenAPI the generator emits) or "controller" (src/crd/validate.ts, which
// reports in status). A controller case must pass the schema: the table pins
// down exactly where each mistake is caught, and with what message.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import type { StructuralSchema } from '../../../src/generate/structural.ts';
import { agentFilterType } from '../../../src/crd/schemas.ts';
import {
  describeFilterError, normalizeBackendConfig, problemsMessage, validateStorageBackend, validateStorageEventPlugin,
} from '../../../src/crd/validate.ts';
import { CASES, long, parser, sbe, sep, VALID_INLINE, type Resource } from './cases.ts';
import { validateAgainstSchema } from './openapi-validate.ts';

const ROOT = path.resolve(import.meta.dirname, '../../..');

function schemaOf(file: string): StructuralSchema {
  const crd = parse(readFileSync(path.join(ROOT, 'crds', file), 'utf8')) as { spec: { versions: { schema: { openAPIV3Schema: StructuralSchema } }[] } };
  return crd.spec.versions[0]!.schema.openAPIV3Schema;
}
const SCHEMAS: Record<string, StructuralSchema> = {
  StorageEventPlugin: schemaOf('storageeventplugins.peripety.io.yaml'),
  StorageBackend: schemaOf('storagebackends.peripety.io.yaml'),
};

/** What the controller says about a resource: problems and filter errors, one line each. */
function controllerMessages(r: Resource): { messages: string[]; ok: boolean } {
  if (r.kind === 'StorageEventPlugin') {
    const v = validateStorageEventPlugin(r);
    return { messages: v.problems.map((p) => `${p.path}: ${p.message}`), ok: v.ok };
  }
  const v = validateStorageBackend(r);
  return { messages: [...v.problems.map((p) => `${p.path}: ${p.message}`), ...v.filterErrors.map(describeFilterError)], ok: v.ok && v.filterErrors.length === 0 };
}

describe('invalid resources: who refuses them, and what they say', () => {
  it('the table has at least 24 cases, on both kinds and both layers', () => {
    assert.ok(CASES.length >= 24, `${CASES.length}`);
    for (const layer of ['schema', 'controller']) for (const kind of ['StorageEventPlugin', 'StorageBackend']) {
      assert.ok(CASES.some((c) => c.layer === layer && c.resource.kind === kind), `${layer} ${kind}`);
    }
  });
  for (const c of CASES) {
    it(`${c.resource.kind}: ${c.what} → ${c.layer}`, () => {
      const schemaErrors = validateAgainstSchema(SCHEMAS[c.resource.kind]!, c.resource);
      if (c.layer === 'schema') {
        assert.ok(schemaErrors.some((e) => e.includes(c.message)), `expected "${c.message}" from the API server, got ${JSON.stringify(schemaErrors)}`);
        return;
      }
      assert.deepEqual(schemaErrors, [], 'a controller case must get past the API server');
      const { messages, ok } = controllerMessages(c.resource);
      assert.equal(ok, false);
      assert.ok(messages.some((m) => m.startsWith(c.message) || (m.includes(c.message) && m.startsWith(c.message.split(':')[0]!))), `expected "${c.message}" from the controller, got ${JSON.stringify(messages)}`);
      if (c.filter) {
        const v = validateStorageBackend(c.resource);
        assert.equal(v.ok, true, 'a broken filter is skipped and reported, the backend still applies');
        const e = v.filterErrors.find((x) => x.index === c.filter!.index);
        assert.ok(e, JSON.stringify(v.filterErrors));
        assert.equal(e.position, c.filter.position);
        assert.equal(e.token, c.filter.token);
        assert.ok(e.message.length > 0);
      }
    });
  }
  it('the controller also catches every schema case it can see (defense against an old CRD), except pruned fields', () => {
    for (const c of CASES.filter((x) => x.layer === 'schema')) {
      const { ok } = controllerMessages(c.resource);
      assert.equal(ok, false, c.what);
    }
  });
});

describe('valid resources', () => {
  const examplesDir = path.join(ROOT, 'manifests/examples');
  const examples = readdirSync(examplesDir).filter((f) => f.endsWith('.yaml')).sort();
  const VALID: [string, Resource][] = [
    ...examples.map((f): [string, Resource] => [`manifests/examples/${f}`, parse(readFileSync(path.join(examplesDir, f), 'utf8')) as Resource]),
    ...VALID_INLINE,
  ];

  it('there are the four examples the manifests promise, and more', () => {
    assert.deepEqual(examples, ['multipath-parser-san.yaml', 'postgres-errors-backend.yaml', 'sqlite-backend.yaml', 'webhook-receiver.yaml']);
    assert.ok(VALID.length >= 9);
  });
  for (const [what, r] of VALID) {
    it(`${what}: the API server and the controller accept it`, () => {
      assert.ok(r.kind in SCHEMAS, r.kind);
      assert.deepEqual(validateAgainstSchema(SCHEMAS[r.kind]!, r), []);
      const { messages, ok } = controllerMessages(r);
      assert.deepEqual(messages, []);
      assert.ok(ok);
    });
  }
  it('the examples say what the issue asks', () => {
    const byName = Object.fromEntries(VALID.map(([w, r]) => [w, r]));
    const mp = byName['manifests/examples/multipath-parser-san.yaml']!;
    assert.deepEqual((mp.spec as { nodeSelector: unknown }).nodeSelector, { matchLabels: { storage: 'san' } });
    const pg = validateStorageBackend(byName['manifests/examples/postgres-errors-backend.yaml']);
    assert.equal(pg.config!.ConnectionSecret, 'peripety-pg');
    assert.deepEqual(pg.warnings, []);
    const wh = validateStorageEventPlugin(byName['manifests/examples/webhook-receiver.yaml']);
    assert.equal(wh.spec!.plugin, 'webhook');
  });
});

describe('validate.ts details', () => {
  it('applies the spec defaults (state Running, run always)', () => {
    assert.equal(validateStorageEventPlugin(sep({ type: 'collector', plugin: 'kmsg' })).spec!.state, 'Running');
    assert.equal(validateStorageBackend(sbe({ backend: 'memory', filters: ['1 1 EQ'] })).spec!.run, 'always');
  });
  it('normalizes camelCase backend settings to the elos spelling', () => {
    assert.deepEqual(normalizeBackendConfig({ maxAgeDays: 3, Path: '/x' }), { config: { MaxAgeDays: 3, Path: '/x' }, problems: [] });
    const v = validateStorageBackend(sbe({ backend: 'sqlite', filters: ['1 1 EQ'], config: { maxAgeDays: 0 } }));
    assert.deepEqual(v.problems.map((p) => p.path), ['spec.config.maxAgeDays'], 'the path is the key as written');
  });
  it('a backend without filters, or with none that compiles, applies with a warning', () => {
    for (const filters of [undefined, [], ['nonsense']]) {
      const v = validateStorageBackend(sbe({ backend: 'memory', ...(filters ? { filters } : {}) }));
      assert.equal(v.ok, true);
      assert.match(v.warnings.map((w) => w.message).join(), /stores no events.*"1 1 EQ"/);
    }
  });
  it('warns about a connection string written into the resource', () => {
    const v = validateStorageBackend(sbe({ backend: 'postgres', filters: ['1 1 EQ'], config: { ConnectionString: 'postgresql://u:p@h/db' } }));
    assert.equal(v.ok, true);
    assert.match(v.warnings[0]!.message, /use|Secret/);
  });
  it('a module backend is accepted; its config is checked on the node', () => {
    const v = validateStorageBackend(sbe({ backend: 'vendor/archive.mjs', filters: ['1 1 EQ'], config: { Anything: 1 } }));
    assert.equal(v.ok, true);
    assert.match(v.warnings[0]!.message, /checked on each node/);
  });
  it('hints at the field meant', () => {
    const v = validateStorageEventPlugin(sep({ ...parser, filterSystem: ['dm'], enabled: true }));
    assert.deepEqual(v.problems.map((p) => `${p.path}: ${p.message}`), [
      'spec.filterSystem: unknown field; did you mean filter.systems?',
      'spec.enabled: unknown field; did you mean state (Running or Stopped)?',
    ]);
    assert.match(validateStorageBackend(sbe({ backend: 'sqlite', File: 'sqlite' })).problems[0]!.message, /did you mean backend/);
  });
  it('a resource that is not an object, or has no name', () => {
    assert.equal(validateStorageEventPlugin('x').ok, false);
    assert.deepEqual(validateStorageBackend({ spec: { backend: 'memory', filters: ['1 1 EQ'] } }).problems, [{ path: 'metadata.name', message: 'required' }]);
  });
  it('problemsMessage: one line, bounded, the first problems first', () => {
    const many = Array.from({ length: 30 }, (_, i) => ({ path: `spec.x${i}`, message: 'bad' }));
    const m = problemsMessage(many);
    assert.match(m, /^spec\.x0: bad; spec\.x1: bad/);
    assert.match(m, /\(and 10 more\)$/);
    assert.ok(problemsMessage([{ path: 'spec', message: long(40_000) }]).length <= 32768);
  });
  it('agentFilterType maps filter.types to the agent\'s filter_type', () => {
    assert.equal(agentFilterType(undefined), 'raw');
    assert.equal(agentFilterType(['synthetic']), 'synthetic');
    assert.equal(agentFilterType(['synthetic', 'raw']), 'both');
  });
});
