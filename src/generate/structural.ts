// JSON Schema (what z.toJSONSchema emits) → a Kubernetes structural schema
// (what a CRD's openAPIV3Schema must be), and a checker for the rules of the
// latter. Both are pure.
//
// Why a conversion: zod emits JSON Schema 2020-12, and the API server takes a
// restricted OpenAPI v3 dialect. A CRD whose schema is not structural gets a
// NonStructuralSchema condition and loses pruning, defaulting and server-side
// apply; a schema using fields the dialect lacks is refused outright. The
// rules (apiextensions-apiserver, "Specifying a structural schema"):
// - every node has a `type` (root, each property, items, additionalProperties),
//   except where x-kubernetes-preserve-unknown-fields or
//   x-kubernetes-int-or-string says otherwise; the root is an object;
// - inside allOf/anyOf/oneOf/not: no type, description, title, default,
//   nullable, additionalProperties or x-kubernetes-* extensions, and every
//   property or items named there is also specified outside;
// - `metadata` at the root restricts name/generateName only, and nowhere else;
// - no $ref, definitions, id, patternProperties, ...; additionalProperties is
//   a schema and never beside properties; uniqueItems is never true;
// - `pattern` is a Go (RE2) regular expression.
//
// The converter throws on anything it cannot express faithfully (a union of
// different types, an intersection, a tuple) rather than emitting a weaker
// schema that silently accepts what the code refuses.

type JsonValue = null | boolean | number | string | JsonValue[] | { [k: string]: JsonValue };

/** The subset of apiextensions.k8s.io/v1 JSONSchemaProps this project emits. */
export interface StructuralSchema {
  type?: 'object' | 'array' | 'string' | 'integer' | 'number' | 'boolean';
  format?: string;
  title?: string;
  description?: string;
  default?: JsonValue;
  nullable?: boolean;
  enum?: JsonValue[];
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: boolean;
  exclusiveMaximum?: boolean;
  multipleOf?: number;
  minLength?: number;
  maxLength?: number;
  pattern?: string;
  minItems?: number;
  maxItems?: number;
  minProperties?: number;
  maxProperties?: number;
  required?: string[];
  properties?: Record<string, StructuralSchema>;
  items?: StructuralSchema;
  additionalProperties?: StructuralSchema;
  'x-kubernetes-preserve-unknown-fields'?: true;
  'x-kubernetes-list-type'?: 'atomic' | 'set' | 'map';
  'x-kubernetes-list-map-keys'?: string[];
  'x-kubernetes-map-type'?: 'atomic' | 'granular';
  'x-kubernetes-int-or-string'?: true;
  'x-kubernetes-embedded-resource'?: true;
}

export class StructuralConversionError extends Error {
  readonly path: string;
  constructor(path: string, message: string) {
    super(`${path || '(root)'}: ${message}`);
    this.name = 'StructuralConversionError';
    this.path = path;
  }
}

type Obj = { [k: string]: unknown };

const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

const TYPES = new Set(['object', 'array', 'string', 'integer', 'number', 'boolean']);
const SCALAR_TYPES = new Set(['string', 'integer', 'number', 'boolean']);

/** Keys JSON Schema may carry that say nothing the API server needs: dropped. */
const DROPPED = new Set(['$schema', '$id', '$defs', 'definitions', 'id', 'examples', 'readOnly', 'writeOnly', 'deprecated', '$comment', 'propertyNames']);

/** Keys copied as they are (after their own checks). */
const COPIED = new Set([
  'format', 'title', 'description', 'default', 'multipleOf', 'minLength', 'maxLength', 'pattern',
  'minItems', 'maxItems', 'minProperties', 'maxProperties',
  'x-kubernetes-list-type', 'x-kubernetes-list-map-keys', 'x-kubernetes-map-type',
  'x-kubernetes-int-or-string', 'x-kubernetes-embedded-resource',
]);

/** zod's bounds of z.int() when none were given: int64 on the wire, not a constraint anyone wrote. */
const SAFE_BOUND = Number.MAX_SAFE_INTEGER;

const join = (path: string, key: string) => (path ? `${path}.${key}` : key);

function typeOfValue(v: unknown): StructuralSchema['type'] | 'null' | undefined {
  if (v === null) return 'null';
  if (typeof v === 'string') return 'string';
  if (typeof v === 'boolean') return 'boolean';
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number';
  if (Array.isArray(v)) return 'array';
  if (isObj(v)) return 'object';
  return undefined;
}

interface Ctx {
  defs: Obj;
  /** $ref targets being expanded (a cycle cannot be inlined) */
  expanding: Set<string>;
}

function resolveRef(ref: unknown, path: string, ctx: Ctx): Obj {
  if (typeof ref !== 'string') throw new StructuralConversionError(path, '$ref must be a string');
  const m = /^#\/(?:\$defs|definitions)\/([^/]+)$/.exec(ref);
  if (m === null) throw new StructuralConversionError(path, `$ref ${JSON.stringify(ref)} is not a local definition`);
  const target = ctx.defs[m[1]!];
  if (!isObj(target)) throw new StructuralConversionError(path, `$ref ${JSON.stringify(ref)} names no definition`);
  if (ctx.expanding.has(ref)) throw new StructuralConversionError(path, `$ref ${JSON.stringify(ref)} is recursive: a structural schema cannot express it`);
  return target;
}

/**
 * Normalize the unions JSON Schema uses for what OpenAPI says otherwise:
 * `T | null` (nullable) and a union of enums or constants of one type (one
 * enum). Returns the node with anyOf/oneOf folded away, or throws.
 */
function foldUnion(node: Obj, path: string): Obj {
  const key = Array.isArray(node.anyOf) ? 'anyOf' : Array.isArray(node.oneOf) ? 'oneOf' : null;
  if (key === null) return node;
  const branches = node[key] as unknown[];
  const { [key]: _drop, ...rest } = node;
  const nonNull = branches.filter((b) => !(isObj(b) && b.type === 'null' && Object.keys(b).length === 1));
  const nullable = nonNull.length < branches.length;
  if (nonNull.length === 1 && isObj(nonNull[0])) {
    // `T | null`: T's own keys, the outer ones (description, default) winning
    return { ...nonNull[0], ...rest, ...(nullable ? { nullable: true } : {}) };
  }
  // a union of literals/enums of one type: one enum
  const values: unknown[] = [];
  let type: unknown;
  for (const b of nonNull) {
    if (!isObj(b)) throw new StructuralConversionError(path, `${key} branch is not a schema`);
    const extra = Object.keys(b).filter((k) => !['type', 'enum', 'const', 'description'].includes(k));
    const vals = Array.isArray(b.enum) ? b.enum : 'const' in b ? [b.const] : null;
    if (vals === null || extra.length > 0) {
      throw new StructuralConversionError(path, `${key} of schemas other than constants cannot be made structural (use one type, or x-kubernetes-preserve-unknown-fields)`);
    }
    for (const v of vals) {
      const t = typeOfValue(v) === 'integer' ? 'number' : typeOfValue(v);
      if (type === undefined) type = t;
      else if (type !== t) throw new StructuralConversionError(path, `${key} mixes constants of different types`);
      values.push(v);
    }
  }
  return { ...rest, enum: values, ...(nullable ? { nullable: true } : {}) };
}

function convertNode(input: unknown, path: string, ctx: Ctx): StructuralSchema {
  if (input === true || (isObj(input) && Object.keys(input).length === 0)) {
    throw new StructuralConversionError(path, 'a schema that accepts anything needs x-kubernetes-preserve-unknown-fields (set it in the zod schema\'s meta)');
  }
  if (!isObj(input)) throw new StructuralConversionError(path, 'not a schema object');
  let node: Obj = input;
  if ('$ref' in node) {
    const ref = node.$ref as string;
    const target = resolveRef(ref, path, ctx);
    const { $ref: _ref, ...siblings } = node;
    ctx.expanding.add(ref);
    try {
      return convertNode({ ...target, ...siblings }, path, ctx);
    } finally {
      ctx.expanding.delete(ref);
    }
  }
  if ('allOf' in node || 'not' in node || 'if' in node) {
    throw new StructuralConversionError(path, 'allOf/not/if cannot be made structural (zod intersections and negations have no OpenAPI form here)');
  }
  node = foldUnion(node, path);
  if ('anyOf' in node || 'oneOf' in node) throw new StructuralConversionError(path, 'nested unions cannot be made structural');

  const out: StructuralSchema = {};
  const preserve = node['x-kubernetes-preserve-unknown-fields'];
  if (preserve !== undefined && preserve !== true) throw new StructuralConversionError(path, 'x-kubernetes-preserve-unknown-fields must be true when set');

  // type: a single OpenAPI type, `null` folded into nullable
  let type: unknown = node.type;
  let nullable = node.nullable === true;
  if (Array.isArray(type)) {
    const t = type.filter((x) => x !== 'null');
    if (t.length < type.length) nullable = true;
    if (t.length !== 1) throw new StructuralConversionError(path, `type ${JSON.stringify(node.type)} is a union of types: a structural schema has one`);
    type = t[0];
  }
  if ('const' in node) {
    if ('enum' in node) throw new StructuralConversionError(path, 'both const and enum');
    node = { ...node, enum: [node.const] };
  }
  if (type === undefined && Array.isArray(node.enum)) {
    const ts = new Set(node.enum.filter((v) => v !== null).map((v) => typeOfValue(v)));
    if (ts.has('integer') && ts.has('number')) ts.delete('integer');
    if (ts.size !== 1) throw new StructuralConversionError(path, 'enum values of mixed types');
    type = [...ts][0];
  }
  if (type === undefined && preserve === true) type = 'object';
  if (type === 'null') throw new StructuralConversionError(path, 'type null alone has no OpenAPI form');
  if (type !== undefined) {
    if (typeof type !== 'string' || !TYPES.has(type)) throw new StructuralConversionError(path, `unknown type ${JSON.stringify(type)}`);
    out.type = type as StructuralSchema['type'];
  }
  if (out.type === undefined && node['x-kubernetes-int-or-string'] !== true) {
    throw new StructuralConversionError(path, 'no type: every node of a structural schema needs one');
  }

  for (const [k, v] of Object.entries(node)) {
    if (DROPPED.has(k)) continue;
    switch (k) {
      case 'type':
      case 'const':
      case 'nullable':
        continue;
      case 'x-kubernetes-preserve-unknown-fields':
        out[k] = true;
        continue;
      case 'enum':
        if (!Array.isArray(v) || v.length === 0) throw new StructuralConversionError(path, 'enum must be a non-empty list');
        if (v.includes(null)) nullable = true;
        out.enum = v.filter((x) => x !== null) as JsonValue[];
        continue;
      case 'minimum':
      case 'maximum':
        if (typeof v !== 'number') throw new StructuralConversionError(path, `${k} must be a number`);
        // z.int()'s implicit ±MAX_SAFE_INTEGER is no constraint a person wrote
        if (Math.abs(v) === SAFE_BOUND && out.type === 'integer') continue;
        {
          // a numeric exclusive bound at least as tight wins (handled below)
          const excl = node[k === 'minimum' ? 'exclusiveMinimum' : 'exclusiveMaximum'];
          if (typeof excl === 'number' && (k === 'minimum' ? excl >= v : excl <= v)) continue;
        }
        out[k] = v;
        continue;
      case 'exclusiveMinimum':
      case 'exclusiveMaximum': {
        // JSON Schema 2020-12: a number; OpenAPI v3.0: a boolean modifying minimum/maximum
        if (typeof v === 'boolean') {
          if (v) out[k] = true;
          continue;
        }
        if (typeof v !== 'number') throw new StructuralConversionError(path, `${k} must be a number or a boolean`);
        const bound = k === 'exclusiveMinimum' ? 'minimum' : 'maximum';
        const other = node[bound];
        // both given: keep the tighter one (equal: the exclusive one)
        if (typeof other === 'number' && (bound === 'minimum' ? other > v : other < v)) continue;
        out[bound] = v;
        out[k] = true;
        continue;
      }
      case 'uniqueItems':
        if (v !== true) continue;
        // the API server refuses uniqueItems (quadratic); a set list-type says the same, in linear time
        out['x-kubernetes-list-type'] = 'set';
        continue;
      case 'required':
        if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) throw new StructuralConversionError(path, 'required must be a list of names');
        if (v.length > 0) out.required = [...(v as string[])];
        continue;
      case 'properties': {
        if (!isObj(v)) throw new StructuralConversionError(path, 'properties must be an object');
        const props: Record<string, StructuralSchema> = {};
        for (const [name, sub] of Object.entries(v)) props[name] = convertNode(sub, join(path, name), ctx);
        out.properties = props;
        continue;
      }
      case 'items':
        if (Array.isArray(v)) throw new StructuralConversionError(path, 'tuple items cannot be made structural');
        out.items = convertNode(v, `${path}[]`, ctx);
        continue;
      case 'prefixItems':
      case 'additionalItems':
      case 'patternProperties':
      case 'dependentSchemas':
      case 'dependentRequired':
      case 'dependencies':
      case 'contains':
        throw new StructuralConversionError(path, `${k} cannot be made structural`);
      case 'additionalProperties':
        // false: the API server prunes (or, with strict field validation, rejects) unknown fields anyway,
        // and false is not allowed beside properties. Anything-goes beside preserve-unknown-fields: redundant.
        if (v === false || v === true || (isObj(v) && Object.keys(v).length === 0)) {
          if (v !== false && preserve !== true) {
            throw new StructuralConversionError(path, 'additionalProperties that accepts anything needs x-kubernetes-preserve-unknown-fields');
          }
          continue;
        }
        if (preserve === true) continue;
        out.additionalProperties = convertNode(v, `${path}.*`, ctx);
        continue;
      default:
        if (COPIED.has(k)) {
          (out as Record<string, unknown>)[k] = v;
          continue;
        }
        throw new StructuralConversionError(path, `unsupported keyword ${JSON.stringify(k)}`);
    }
  }
  if (nullable) out.nullable = true;
  // a date-time is checked by its format; zod's long ISO regex adds nothing there
  if (out.format === 'date-time') delete out.pattern;
  if (out.properties !== undefined && out.additionalProperties !== undefined) {
    throw new StructuralConversionError(path, 'both properties and additionalProperties: a structural schema allows one');
  }
  if (out.type === 'array' && out.items === undefined) throw new StructuralConversionError(path, 'an array needs items');
  return orderKeys(out);
}

/** A stable, readable key order (type and description first, children last), so generated files diff well. */
const KEY_ORDER: readonly (keyof StructuralSchema)[] = [
  'description', 'type', 'format', 'title', 'nullable', 'default', 'enum',
  'minimum', 'exclusiveMinimum', 'maximum', 'exclusiveMaximum', 'multipleOf',
  'minLength', 'maxLength', 'pattern', 'minItems', 'maxItems', 'minProperties', 'maxProperties',
  'x-kubernetes-preserve-unknown-fields', 'x-kubernetes-int-or-string', 'x-kubernetes-embedded-resource',
  'x-kubernetes-map-type', 'x-kubernetes-list-type', 'x-kubernetes-list-map-keys',
  'required', 'items', 'additionalProperties', 'properties',
];

function orderKeys(s: StructuralSchema): StructuralSchema {
  const out: Record<string, unknown> = {};
  for (const k of KEY_ORDER) if (s[k] !== undefined) out[k] = s[k];
  return out as StructuralSchema;
}

/**
 * Convert a JSON Schema (z.toJSONSchema output, draft 2020-12 or OpenAPI 3.0
 * target) into a Kubernetes structural schema. Throws StructuralConversionError
 * naming the path of anything that has no faithful structural form.
 */
export function toStructural(schema: unknown): StructuralSchema {
  if (!isObj(schema)) throw new StructuralConversionError('', 'not a schema object');
  const defs = { ...(isObj(schema.definitions) ? schema.definitions : {}), ...(isObj(schema.$defs) ? schema.$defs : {}) };
  return convertNode(schema, '', { defs, expanding: new Set() });
}

// ---------------------------------------------------------------------------
// The checker

/** Every key apiextensions.k8s.io/v1 JSONSchemaProps has that a CRD may use (the forbidden ones are absent). */
const JSON_SCHEMA_PROPS = new Set([
  'type', 'format', 'title', 'description', 'default', 'nullable', 'enum', 'minimum', 'maximum',
  'exclusiveMinimum', 'exclusiveMaximum', 'multipleOf', 'minLength', 'maxLength', 'pattern',
  'minItems', 'maxItems', 'uniqueItems', 'minProperties', 'maxProperties', 'required',
  'properties', 'items', 'additionalProperties', 'allOf', 'anyOf', 'oneOf', 'not', 'example', 'externalDocs',
  'x-kubernetes-preserve-unknown-fields', 'x-kubernetes-int-or-string', 'x-kubernetes-embedded-resource',
  'x-kubernetes-list-type', 'x-kubernetes-list-map-keys', 'x-kubernetes-map-type', 'x-kubernetes-validations',
]);
const FORBIDDEN_HINT: Record<string, string> = {
  $ref: 'references are not supported: inline the schema',
  $schema: 'not a JSONSchemaProps field',
  $defs: 'definitions are not supported: inline them',
  definitions: 'definitions are not supported: inline them',
  id: 'forbidden in CRD schemas',
  const: 'not supported: use a one-value enum',
  propertyNames: 'not supported: key rules belong in the controller',
  patternProperties: 'forbidden in CRD schemas',
  dependencies: 'forbidden in CRD schemas',
  readOnly: 'forbidden in CRD schemas',
  writeOnly: 'forbidden in CRD schemas',
  deprecated: 'forbidden in CRD schemas',
  discriminator: 'forbidden in CRD schemas',
  xml: 'forbidden in CRD schemas',
};
/** Not allowed inside allOf/anyOf/oneOf/not (the "generic" and extension fields). */
const JUNCTOR_FORBIDDEN = [
  'type', 'description', 'title', 'default', 'nullable', 'additionalProperties',
  'x-kubernetes-preserve-unknown-fields', 'x-kubernetes-embedded-resource', 'x-kubernetes-int-or-string',
  'x-kubernetes-list-type', 'x-kubernetes-list-map-keys', 'x-kubernetes-map-type', 'x-kubernetes-validations',
];
const JUNCTORS = ['allOf', 'anyOf', 'oneOf'] as const;

/** Go's regexp (RE2) lacks these; a pattern using them makes the CRD invalid. */
const RE2_UNSUPPORTED: readonly [RegExp, string][] = [
  [/\(\?[=!]/, 'lookahead'],
  [/\(\?<[=!]/, 'lookbehind'],
  [/\\[1-9]/, 'a backreference'],
  [/\\k</, 'a named backreference'],
  [/[*+?}]\+/, 'a possessive quantifier'],
  [/\(\?>/, 'an atomic group'],
];

function patternProblem(p: string): string | null {
  try {
    new RegExp(p, 'u');
  } catch (e) {
    return `not a valid regular expression: ${(e as Error).message}`;
  }
  for (const [re, what] of RE2_UNSUPPORTED) if (re.test(p)) return `uses ${what}, which Go's RE2 (the API server's engine) does not support`;
  return null;
}

function valueMatchesType(v: unknown, type: unknown): boolean {
  const t = typeOfValue(v);
  if (type === 'number') return t === 'number' || t === 'integer';
  return t === type;
}

type Level = 'root' | 'field' | 'item';

function checkNode(s: unknown, path: string, level: Level, out: string[]): void {
  const at = path || '(root)';
  if (!isObj(s)) {
    out.push(`${at}: a schema must be an object`);
    return;
  }
  for (const k of Object.keys(s)) {
    if (!JSON_SCHEMA_PROPS.has(k)) out.push(`${at}: ${JSON.stringify(k)} ${FORBIDDEN_HINT[k] ?? 'is not a field of a CRD schema (JSONSchemaProps)'}`);
  }
  const preserve = s['x-kubernetes-preserve-unknown-fields'];
  const intOrString = s['x-kubernetes-int-or-string'] === true;
  if (preserve !== undefined && preserve !== true) out.push(`${at}: x-kubernetes-preserve-unknown-fields must be true or absent`);
  const type = s.type;
  if (type === undefined || type === '') {
    if (!intOrString && preserve !== true) out.push(`${at}: type must not be empty for ${level === 'root' ? 'the root' : level === 'item' ? 'specified array items' : 'specified object fields'}`);
  } else if (typeof type !== 'string' || !TYPES.has(type)) {
    out.push(`${at}: type ${JSON.stringify(type)} is not one of ${[...TYPES].join(', ')}`);
  }
  if (level === 'root' && type !== 'object') out.push(`${at}: the root must be of type object`);
  if (level === 'root' && 'additionalProperties' in s) out.push(`${at}: additionalProperties must not be used at the root`);

  // children
  if (s.properties !== undefined) {
    if (!isObj(s.properties)) out.push(`${at}: properties must be an object`);
    else for (const [k, v] of Object.entries(s.properties)) checkNode(v, join(path, `properties.${k}`), 'field', out);
  }
  if ('additionalProperties' in s) {
    const ap = s.additionalProperties;
    if (!isObj(ap)) out.push(`${at}: additionalProperties must be a schema (false is not allowed; unknown fields are pruned anyway)`);
    else checkNode(ap, join(path, 'additionalProperties'), 'field', out);
    if (s.properties !== undefined) out.push(`${at}: properties and additionalProperties are mutually exclusive`);
  }
  if (type === 'array' && s.items === undefined) out.push(`${at}: items must be specified for an array`);
  if (s.items !== undefined) {
    if (Array.isArray(s.items)) out.push(`${at}: items must be a single schema`);
    else checkNode(s.items, join(path, 'items'), 'item', out);
  }
  if (s.uniqueItems === true) out.push(`${at}: uniqueItems must not be true (use x-kubernetes-list-type: set)`);
  if (s.required !== undefined) {
    if (!Array.isArray(s.required)) out.push(`${at}: required must be a list`);
    else if (isObj(s.properties) && preserve !== true) {
      for (const r of s.required) if (!Object.hasOwn(s.properties, String(r))) out.push(`${at}: required field ${JSON.stringify(r)} is not among the properties`);
    }
  }
  if (typeof s.pattern === 'string') {
    const p = patternProblem(s.pattern);
    if (p !== null) out.push(`${at}: pattern ${p}`);
  }
  if (Array.isArray(s.enum) && typeof type === 'string') {
    for (const v of s.enum) if (!(v === null && s.nullable === true) && !valueMatchesType(v, type)) out.push(`${at}: enum value ${JSON.stringify(v)} is not of type ${type}`);
  }
  if (s.default !== undefined && typeof type === 'string' && !valueMatchesType(s.default, type)) {
    out.push(`${at}: default ${JSON.stringify(s.default)} is not of type ${type}`);
  }
  if (Array.isArray(s.enum) && s.default !== undefined && !s.enum.some((v) => JSON.stringify(v) === JSON.stringify(s.default))) {
    out.push(`${at}: default ${JSON.stringify(s.default)} is not one of the enum values`);
  }

  // list and map types
  const listType = s['x-kubernetes-list-type'];
  const mapKeys = s['x-kubernetes-list-map-keys'];
  if (listType !== undefined) {
    if (type !== 'array') out.push(`${at}: x-kubernetes-list-type is only for arrays`);
    if (!['atomic', 'set', 'map'].includes(String(listType))) out.push(`${at}: x-kubernetes-list-type must be atomic, set or map`);
    const items = isObj(s.items) ? s.items : {};
    if (listType === 'set' && !SCALAR_TYPES.has(String(items.type))) out.push(`${at}: x-kubernetes-list-type set needs scalar items`);
    if (listType === 'map') {
      if (items.type !== 'object') out.push(`${at}: x-kubernetes-list-type map needs object items`);
      if (!Array.isArray(mapKeys) || mapKeys.length === 0) out.push(`${at}: x-kubernetes-list-type map needs x-kubernetes-list-map-keys`);
      else {
        const props = isObj(items.properties) ? items.properties : {};
        const req = Array.isArray(items.required) ? items.required : [];
        for (const key of mapKeys) {
          const p = props[String(key)];
          if (!isObj(p)) out.push(`${at}: list map key ${JSON.stringify(key)} is not a property of the items`);
          else {
            if (!SCALAR_TYPES.has(String(p.type))) out.push(`${at}: list map key ${JSON.stringify(key)} must be a scalar`);
            if (!req.includes(key) && p.default === undefined) out.push(`${at}: list map key ${JSON.stringify(key)} must be required or have a default`);
          }
        }
      }
    }
  }
  if (mapKeys !== undefined && listType !== 'map') out.push(`${at}: x-kubernetes-list-map-keys needs x-kubernetes-list-type map`);
  const mapType = s['x-kubernetes-map-type'];
  if (mapType !== undefined && (type !== 'object' || !['atomic', 'granular'].includes(String(mapType)))) {
    out.push(`${at}: x-kubernetes-map-type must be atomic or granular, on an object`);
  }

  // logical junctors: value validation only, and nothing they name may be unspecified outside
  for (const j of JUNCTORS) {
    const list = s[j];
    if (list === undefined) continue;
    if (!Array.isArray(list)) {
      out.push(`${at}: ${j} must be a list`);
      continue;
    }
    list.forEach((b, i) => checkJunctorBranch(b, s, `${join(path, j)}[${i}]`, out));
  }
  if (s.not !== undefined) checkJunctorBranch(s.not, s, join(path, 'not'), out);

  // metadata: at the root, name/generateName restrictions only; nowhere else (unless embedded)
  if (isObj(s.properties)) {
    const md = s.properties.metadata;
    if (isObj(md)) {
      if (level === 'root' || s['x-kubernetes-embedded-resource'] === true) {
        const extra = Object.keys(md).filter((k) => k !== 'type' && k !== 'properties');
        const props = isObj(md.properties) ? Object.keys(md.properties).filter((k) => k !== 'name' && k !== 'generateName') : [];
        if (md.type !== 'object') out.push(`${join(path, 'properties.metadata')}: type must be object`);
        if (level === 'root' && (extra.length > 0 || props.length > 0)) {
          out.push(`${join(path, 'properties.metadata')}: must not specify anything other than name and generateName (found ${[...extra, ...props].join(', ')})`);
        }
      }
    }
    for (const k of ['kind', 'apiVersion']) {
      const p = s.properties[k];
      if ((level === 'root' || s['x-kubernetes-embedded-resource'] === true) && isObj(p) && p.type !== 'string') {
        out.push(`${join(path, `properties.${k}`)}: type must be string`);
      }
    }
  }
}

function checkJunctorBranch(b: unknown, outer: Obj, path: string, out: string[]): void {
  if (!isObj(b)) {
    out.push(`${path}: must be a schema`);
    return;
  }
  for (const k of JUNCTOR_FORBIDDEN) if (k in b) out.push(`${path}: ${k} must not be set inside a logical junctor (structural schemas)`);
  if (isObj(b.properties)) {
    const outerProps = isObj(outer.properties) ? outer.properties : {};
    for (const [k, v] of Object.entries(b.properties)) {
      if (!Object.hasOwn(outerProps, k)) out.push(`${path}.properties.${k}: must also be specified outside the logical junctor`);
      if (k === 'metadata') out.push(`${path}.properties.metadata: must not be specified in a nested context`);
      checkJunctorBranch(v, isObj(outerProps[k]) ? outerProps[k] : {}, `${path}.properties.${k}`, out);
    }
  }
  if (b.items !== undefined) {
    if (outer.items === undefined) out.push(`${path}.items: must also be specified outside the logical junctor`);
    checkJunctorBranch(b.items, isObj(outer.items) ? outer.items : {}, `${path}.items`, out);
  }
  for (const j of JUNCTORS) if (Array.isArray(b[j])) (b[j] as unknown[]).forEach((x, i) => checkJunctorBranch(x, outer, `${path}.${j}[${i}]`, out));
  if (b.not !== undefined) checkJunctorBranch(b.not, outer, `${path}.not`, out);
  if (typeof b.pattern === 'string') {
    const p = patternProblem(b.pattern);
    if (p !== null) out.push(`${path}: pattern ${p}`);
  }
}

/**
 * Violations of the Kubernetes structural-schema rules (and of the CRD
 * schema validation the API server does on top), each as "path: reason".
 * Empty means the API server would take the schema without a
 * NonStructuralSchema condition. `schema` is a CRD version's openAPIV3Schema.
 */
export function structuralProblems(schema: unknown): string[] {
  const out: string[] = [];
  checkNode(schema, '', 'root', out);
  return out;
}
