import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import { z } from 'zod';
import { openApiSchemaOf, RESOURCES, structuralOf } from '../../../src/generate/crds.ts';
import { StructuralConversionError, structuralProblems, toStructural, type StructuralSchema } from '../../../src/generate/structural.ts';

const CRDS = path.resolve(import.meta.dirname, '../../../crds');

interface CrdFile {
  spec: { versions: { name: string; schema: { openAPIV3Schema: StructuralSchema } }[] };
}

function shippedSchemas(): [string, StructuralSchema][] {
  return RESOURCES.map((r) => {
    const crd = parse(readFileSync(path.join(CRDS, `${r.plural}.peripety.io.yaml`), 'utf8')) as CrdFile;
    assert.equal(crd.spec.versions.length, 1);
    return [r.kind, crd.spec.versions[0]!.schema.openAPIV3Schema];
  });
}

/** Every property (what kubectl explain lists) with its path. */
function* fields(s: StructuralSchema, at: string): Generator<[string, StructuralSchema]> {
  for (const [k, v] of Object.entries(s.properties ?? {})) {
    yield [`${at}.${k}`, v];
    yield* fields(v, `${at}.${k}`);
  }
  if (s.items) yield* fields(s.items, `${at}[]`);
  if (s.additionalProperties) yield* fields(s.additionalProperties, `${at}.*`);
}

describe('the generated CRD schemas', () => {
  for (const [kind, schema] of shippedSchemas()) {
    it(`${kind}: structural (no NonStructuralSchema condition)`, () => {
      assert.deepEqual(structuralProblems(schema), []);
    });
    it(`${kind}: every field has a description (kubectl explain), except metadata, which may not have one`, () => {
      assert.ok(schema.description);
      const missing = [...fields(schema, kind)].filter(([p, s]) => !s.description && !p.startsWith(`${kind}.metadata`)).map(([p]) => p);
      assert.deepEqual(missing, []);
    });
    it(`${kind}: only config keeps unknown fields; no JSON Schema leftovers`, () => {
      const preserved = [...fields(schema, kind)].filter(([, s]) => s['x-kubernetes-preserve-unknown-fields']).map(([p]) => p);
      assert.deepEqual(preserved, [`${kind}.spec.config`]);
      const text = JSON.stringify(schema);
      for (const bad of ['$ref', '$schema', '"const"', 'anyOf', 'oneOf', 'allOf', 'propertyNames', '"additionalProperties":false', '9007199254740991']) {
        assert.ok(!text.includes(bad), `${bad} in the ${kind} schema`);
      }
    });
    it(`${kind}: conditions are a map list keyed by type`, () => {
      const c = schema.properties!.status!.properties!.conditions!;
      assert.equal(c['x-kubernetes-list-type'], 'map');
      assert.deepEqual(c['x-kubernetes-list-map-keys'], ['type']);
      assert.deepEqual(c.items!.properties!.status!.enum, ['True', 'False', 'Unknown']);
    });
  }
  it('the shipped files are what the builder makes now', () => {
    const shipped = Object.fromEntries(shippedSchemas());
    for (const r of RESOURCES) assert.deepEqual(shipped[r.kind], JSON.parse(JSON.stringify(openApiSchemaOf(r))));
  });
});

describe('structuralProblems', () => {
  const ok: StructuralSchema = { type: 'object', properties: { spec: { type: 'object', properties: { a: { type: 'string' } } } } };
  const root = (spec: unknown) => ({ type: 'object', properties: { spec } });
  const cases: [string, unknown, RegExp][] = [
    ['a field without a type', root({ type: 'object', properties: { a: { description: 'x' } } }), /spec\.properties\.a: type must not be empty for specified object fields/],
    ['array items without a type', root({ type: 'array', items: { description: 'x' } }), /items: type must not be empty for specified array items/],
    ['an array without items', root({ type: 'array' }), /items must be specified/],
    ['the root not an object', { type: 'string' }, /root must be of type object/],
    ['additionalProperties at the root', { type: 'object', additionalProperties: { type: 'string' } }, /must not be used at the root/],
    ['a $ref', root({ $ref: '#/$defs/x' }), /"\$ref" references are not supported/],
    ['$schema', { ...ok, $schema: 'https://json-schema.org/draft/2020-12/schema' }, /"\$schema"/],
    ['const', root({ type: 'string', const: 'a' }), /"const" not supported: use a one-value enum/],
    ['additionalProperties: false', root({ type: 'object', properties: { a: { type: 'string' } }, additionalProperties: false }), /additionalProperties must be a schema/],
    ['properties beside additionalProperties', root({ type: 'object', properties: { a: { type: 'string' } }, additionalProperties: { type: 'string' } }), /mutually exclusive/],
    ['a type inside anyOf', root({ type: 'string', anyOf: [{ type: 'string' }, { type: 'integer' }] }), /anyOf\[0\]: type must not be set inside a logical junctor/],
    ['a description inside oneOf', root({ type: 'string', oneOf: [{ description: 'x', maxLength: 3 }] }), /description must not be set inside/],
    ['a property only inside allOf', root({ type: 'object', properties: {}, allOf: [{ properties: { b: { maxLength: 3 } } }] }), /properties\.b: must also be specified outside/],
    ['metadata restricting labels', { type: 'object', properties: { metadata: { type: 'object', properties: { labels: { type: 'object', additionalProperties: { type: 'string' } } } } } }, /must not specify anything other than name and generateName/],
    ['metadata with a description', { type: 'object', properties: { metadata: { type: 'object', description: 'x' } } }, /other than name and generateName/],
    ['kind not a string', { type: 'object', properties: { kind: { type: 'integer' } } }, /properties\.kind: type must be string/],
    ['uniqueItems', root({ type: 'array', items: { type: 'string' }, uniqueItems: true }), /uniqueItems must not be true/],
    ['a list-map key that is not required', root({ type: 'array', 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['k'], items: { type: 'object', properties: { k: { type: 'string' } } } }), /list map key "k" must be required or have a default/],
    ['a list-map key that does not exist', root({ type: 'array', 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['k'], items: { type: 'object', properties: {} } }), /"k" is not a property of the items/],
    ['a set of objects', root({ type: 'array', 'x-kubernetes-list-type': 'set', items: { type: 'object', properties: {} } }), /set needs scalar items/],
    ['list-map keys without list-type map', root({ type: 'array', 'x-kubernetes-list-map-keys': ['k'], items: { type: 'string' } }), /needs x-kubernetes-list-type map/],
    ['preserve-unknown-fields false', root({ type: 'object', 'x-kubernetes-preserve-unknown-fields': false }), /must be true or absent/],
    ['a lookahead pattern (not RE2)', root({ type: 'string', pattern: '^(?!x)a$' }), /lookahead/],
    ['a backreference pattern', root({ type: 'string', pattern: '^(a)\\1$' }), /backreference/],
    ['an invalid pattern', root({ type: 'string', pattern: '^(a$' }), /not a valid regular expression/],
    ['an enum value of the wrong type', root({ type: 'string', enum: ['a', 1] }), /enum value 1 is not of type string/],
    ['a default outside the enum', root({ type: 'string', enum: ['a'], default: 'b' }), /default "b" is not one of the enum values/],
    ['a required field that is not a property', root({ type: 'object', required: ['x'], properties: {} }), /required field "x" is not among the properties/],
    ['type null', root({ type: 'null' }), /type "null" is not one of/],
    ['an unknown keyword', root({ type: 'string', examples: ['a'] }), /"examples" is not a field of a CRD schema/],
  ];
  it('accepts a plain structural schema', () => assert.deepEqual(structuralProblems(ok), []));
  it('accepts the int-or-string and preserve-unknown-fields exceptions to "every node has a type"', () => {
    assert.deepEqual(structuralProblems(root({ type: 'object', properties: { a: { 'x-kubernetes-int-or-string': true, anyOf: [{ type: 'integer' }, { type: 'string' }] }, b: { 'x-kubernetes-preserve-unknown-fields': true } } })).filter((p) => !/anyOf/.test(p)), []);
  });
  for (const [name, schema, re] of cases) {
    it(`reports ${name}`, () => {
      const problems = structuralProblems(schema);
      assert.ok(problems.some((p) => re.test(p)), `expected ${re} in ${JSON.stringify(problems)}`);
    });
  }
});

describe('toStructural', () => {
  const conv = (s: z.ZodType) => structuralOf(z.strictObject({ f: s }).describe('root')).properties!.f!;

  it('drops $schema and additionalProperties: false; keeps required and descriptions', () => {
    const s = structuralOf(z.strictObject({ a: z.string().describe('an a'), b: z.int().optional() }).describe('d'));
    assert.deepEqual(s, {
      description: 'd', type: 'object', required: ['a'],
      properties: { a: { description: 'an a', type: 'string' }, b: { type: 'integer' } },
    });
    assert.deepEqual(structuralProblems(s), []);
  });
  it('const → a one-value enum; a union of literals → one enum', () => {
    assert.deepEqual(conv(z.literal('x')), { type: 'string', enum: ['x'] });
    assert.deepEqual(conv(z.union([z.literal('a'), z.literal('b'), z.enum(['c'])])), { type: 'string', enum: ['a', 'b', 'c'] });
  });
  it('nullable: type [T, null] and anyOf [T, null] both become nullable: true', () => {
    assert.deepEqual(conv(z.string().max(3).nullable()), { type: 'string', nullable: true, maxLength: 3 });
    assert.deepEqual(toStructural({ type: 'object', properties: { a: { anyOf: [{ type: 'integer', minimum: 1 }, { type: 'null' }], description: 'x' } } }).properties!.a, {
      description: 'x', type: 'integer', nullable: true, minimum: 1,
    });
  });
  it('maps: additionalProperties with the value schema, no propertyNames', () => {
    assert.deepEqual(conv(z.record(z.string().max(5), z.string().max(9))), { type: 'object', additionalProperties: { type: 'string', maxLength: 9 } });
  });
  it('preserve-unknown-fields: type object, no additionalProperties', () => {
    assert.deepEqual(conv(z.record(z.string(), z.unknown()).meta({ 'x-kubernetes-preserve-unknown-fields': true })), {
      type: 'object', 'x-kubernetes-preserve-unknown-fields': true,
    });
  });
  it('numbers: z.int()\'s implicit safe-integer bounds go, exclusive bounds become OpenAPI booleans', () => {
    assert.deepEqual(conv(z.int()), { type: 'integer' });
    assert.deepEqual(conv(z.int().min(0)), { type: 'integer', minimum: 0 });
    assert.deepEqual(conv(z.number().positive().lt(10)), { type: 'number', minimum: 0, exclusiveMinimum: true, maximum: 10, exclusiveMaximum: true });
    assert.deepEqual(toStructural({ type: 'object', properties: { a: { type: 'number', minimum: 5, exclusiveMinimum: 2 } } }).properties!.a, { type: 'number', minimum: 5 });
  });
  it('date-time: format kept, zod\'s regex dropped', () => {
    assert.deepEqual(conv(z.iso.datetime()), { type: 'string', format: 'date-time' });
  });
  it('defaults are kept (the API server applies them)', () => {
    assert.deepEqual(conv(z.enum(['a', 'b']).default('a')), { type: 'string', default: 'a', enum: ['a', 'b'] });
  });
  it('uniqueItems → x-kubernetes-list-type: set', () => {
    assert.deepEqual(toStructural({ type: 'object', properties: { a: { type: 'array', uniqueItems: true, items: { type: 'string' } } } }).properties!.a, {
      type: 'array', 'x-kubernetes-list-type': 'set', items: { type: 'string' },
    });
  });
  it('$ref is inlined; a recursive one is refused', () => {
    const s = toStructural({ type: 'object', properties: { a: { $ref: '#/$defs/A', description: 'outer' } }, $defs: { A: { type: 'string', description: 'inner' } } });
    assert.deepEqual(s.properties!.a, { description: 'outer', type: 'string' });
    assert.throws(
      () => toStructural({ type: 'object', properties: { a: { $ref: '#/$defs/A' } }, $defs: { A: { type: 'object', properties: { next: { $ref: '#/$defs/A' } } } } }),
      (e: unknown) => e instanceof StructuralConversionError && /recursive/.test(e.message) && e.path === 'a.next',
    );
  });
  it('refuses what has no faithful structural form, naming the path', () => {
    const refuse = (s: z.ZodType, re: RegExp) => assert.throws(() => conv(s), (e: unknown) => e instanceof StructuralConversionError && re.test(e.message) && e.path.startsWith('f'));
    refuse(z.union([z.string(), z.number()]), /union of types/);
    refuse(z.union([z.string().max(3), z.int().min(1)]), /union of types|anyOf/);
    // zod flattens an intersection of objects itself; an allOf reaching the converter is refused
    assert.throws(() => toStructural({ type: 'object', properties: { f: { allOf: [{ type: 'string' }, { maxLength: 3 }] } } }), /f: allOf/);
    refuse(z.tuple([z.string(), z.number()]), /prefixItems|tuple/);
    refuse(z.unknown(), /x-kubernetes-preserve-unknown-fields/);
    refuse(z.record(z.string(), z.unknown()), /x-kubernetes-preserve-unknown-fields/);
  });
});
