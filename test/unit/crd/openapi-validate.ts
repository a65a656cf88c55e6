// What the API server does with an object against a CRD's structural
// openAPIV3Schema, for the subset of OpenAPI the generator emits: types,
// nullable, enum, required, properties (unknown fields refused, as kubectl's
// default strict field validation does, except under
// x-kubernetes-preserve-unknown-fields), maps, items, lengths, counts,
// patterns, bounds, formats and x-kubernetes-list-type set/map uniqueness.
// Messages follow the API server's wording so the tests read like what a
// person sees from `kubectl apply`. Anything outside the subset fails loudly:
// a test must not pass because the validator ignored a keyword.
import type { StructuralSchema } from '../../../src/generate/structural.ts';

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

const HANDLED = new Set([
  'description', 'type', 'format', 'title', 'nullable', 'default', 'enum', 'minimum', 'exclusiveMinimum', 'maximum', 'exclusiveMaximum',
  'minLength', 'maxLength', 'pattern', 'minItems', 'maxItems', 'minProperties', 'maxProperties', 'required', 'items', 'properties',
  'additionalProperties', 'x-kubernetes-preserve-unknown-fields', 'x-kubernetes-list-type', 'x-kubernetes-list-map-keys',
]);

const show = (v: unknown) => (typeof v === 'string' ? JSON.stringify(v) : JSON.stringify(v) ?? String(v));
const join = (path: string, key: string) => (path ? `${path}.${key}` : key);

function typeName(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number';
  return typeof v;
}

function typeMatches(v: unknown, type: string): boolean {
  const t = typeName(v);
  return t === type || (type === 'number' && t === 'integer');
}

const DATE_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

function validate(s: StructuralSchema, v: unknown, path: string, out: string[]): void {
  for (const k of Object.keys(s)) if (!HANDLED.has(k)) throw new Error(`openapi-validate: keyword ${k} at ${path} is not implemented`);
  const at = path || '<root>';
  if (v === null) {
    if (s.nullable !== true) out.push(`${at}: Invalid value: "null": ${at} in body must be of type ${s.type}: "null"`);
    return;
  }
  if (s.type !== undefined && !typeMatches(v, s.type)) {
    out.push(`${at}: Invalid value: "${typeName(v)}": ${at} in body must be of type ${s.type}: "${typeName(v)}"`);
    return;
  }
  if (s.enum !== undefined && !s.enum.some((e) => JSON.stringify(e) === JSON.stringify(v))) {
    out.push(`${at}: Unsupported value: ${show(v)}: supported values: ${s.enum.map(show).join(', ')}`);
  }
  if (typeof v === 'string') {
    const n = [...v].length;
    if (s.maxLength !== undefined && n > s.maxLength) out.push(`${at}: Too long: may not be more than ${s.maxLength} bytes`);
    if (s.minLength !== undefined && n < s.minLength) out.push(`${at}: Invalid value: ${show(v)}: ${at} in body should be at least ${s.minLength} chars long`);
    if (s.pattern !== undefined && !new RegExp(s.pattern, 'u').test(v)) out.push(`${at}: Invalid value: ${show(v)}: ${at} in body should match '${s.pattern}'`);
    if (s.format === 'date-time' && !DATE_TIME.test(v)) out.push(`${at}: Invalid value: ${show(v)}: ${at} in body must be of type date-time: ${show(v)}`);
  }
  if (typeof v === 'number') {
    if (s.minimum !== undefined && (s.exclusiveMinimum ? v <= s.minimum : v < s.minimum)) {
      out.push(`${at}: Invalid value: ${v}: ${at} in body should be greater than ${s.exclusiveMinimum ? '' : 'or equal to '}${s.minimum}`);
    }
    if (s.maximum !== undefined && (s.exclusiveMaximum ? v >= s.maximum : v > s.maximum)) {
      out.push(`${at}: Invalid value: ${v}: ${at} in body should be less than ${s.exclusiveMaximum ? '' : 'or equal to '}${s.maximum}`);
    }
  }
  if (Array.isArray(v)) {
    if (s.maxItems !== undefined && v.length > s.maxItems) out.push(`${at}: Too many: ${v.length}: must have at most ${s.maxItems} items`);
    if (s.minItems !== undefined && v.length < s.minItems) out.push(`${at}: Invalid value: ${v.length}: ${at} in body should have at least ${s.minItems} items`);
    const seen = new Set<string>();
    v.forEach((item, i) => {
      if (s.items !== undefined) validate(s.items, item, `${path}[${i}]`, out);
      const listType = s['x-kubernetes-list-type'];
      let key: string | null = null;
      if (listType === 'set') key = JSON.stringify(item);
      if (listType === 'map' && isObj(item)) key = JSON.stringify((s['x-kubernetes-list-map-keys'] ?? []).map((k) => item[k]));
      if (key !== null) {
        if (seen.has(key)) out.push(`${at}[${i}]: Duplicate value: ${listType === 'set' ? show(item) : key}`);
        seen.add(key);
      }
    });
  }
  if (isObj(v)) {
    const keys = Object.keys(v);
    if (s.maxProperties !== undefined && keys.length > s.maxProperties) out.push(`${at}: Too many: ${keys.length}: must have at most ${s.maxProperties} items`);
    if (s.minProperties !== undefined && keys.length < s.minProperties) out.push(`${at}: Invalid value: ${keys.length}: ${at} in body should have at least ${s.minProperties} properties`);
    for (const r of s.required ?? []) if (!Object.hasOwn(v, r)) out.push(`${join(path, r)}: Required value`);
    for (const k of keys) {
      const sub = s.properties?.[k];
      if (sub !== undefined) validate(sub, v[k], join(path, k), out);
      else if (s.additionalProperties !== undefined) validate(s.additionalProperties, v[k], join(path, k), out);
      else if (s['x-kubernetes-preserve-unknown-fields'] !== true && !(path === 'metadata')) out.push(`unknown field "${join(path, k)}"`);
    }
  }
}

/**
 * The errors the API server would give when creating `obj` under `schema`
 * (the CRD's openAPIV3Schema); empty when it would be stored. `metadata`
 * fields other than those the schema names are the API server's own
 * business (ObjectMeta), not refused here.
 */
export function validateAgainstSchema(schema: StructuralSchema, obj: unknown): string[] {
  const out: string[] = [];
  validate(schema, obj, '', out);
  return out;
}
