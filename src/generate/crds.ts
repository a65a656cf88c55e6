// The two CustomResourceDefinitions, built from the zod schemas in
// src/crd/schemas.ts: hack/gen-crds.ts writes them to crds/, tests check that what is
// there is what this builds and that its schemas are structural.
import { stringify } from 'yaml';
import { z } from 'zod';
import {
  API_VERSION, CONDITION_ACCEPTED, GROUP, MAX_RESOURCE_NAME, RESOURCE_NAME_RE, StorageBackendSpec, StorageBackendStatus,
  StorageEventPluginSpec, StorageEventPluginStatus, VERSION,
} from '../crd/schemas.ts';
import { toStructural, type StructuralSchema } from './structural.ts';

interface PrinterColumn {
  name: string;
  type: 'string' | 'integer' | 'number' | 'boolean' | 'date';
  jsonPath: string;
  description: string;
  priority?: number;
}

interface ResourceInfo {
  kind: string;
  plural: string;
  singular: string;
  shortName: string;
  description: string;
  spec: z.ZodType;
  status: z.ZodType;
  columns: PrinterColumn[];
}

const ready: PrinterColumn = { name: 'Ready', type: 'string', jsonPath: '.status.ready', description: 'Nodes running the current generation / nodes selected.' };
const accepted: PrinterColumn = {
  name: 'Accepted',
  type: 'string',
  jsonPath: `.status.conditions[?(@.type=="${CONDITION_ACCEPTED}")].status`,
  description: 'Whether the spec is valid (the Accepted condition; its message says what to fix).',
  priority: 1,
};
const failed: PrinterColumn = { name: 'Failed', type: 'integer', jsonPath: '.status.nodesFailed', description: 'Selected nodes where applying failed.', priority: 1 };
const age: PrinterColumn = { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp', description: 'Time since the resource was created.' };
/** The columns every resource ends with: how it is rolled out to its nodes, and its age. */
const command: PrinterColumn = { name: 'Command', type: 'string', jsonPath: '.status.command.request', description: 'The last one-off command (annotation peripety.io/command) the controller took.', priority: 1 };
const commandPhase: PrinterColumn = { name: 'Command-Phase', type: 'string', jsonPath: '.status.command.phase', description: 'Running, Succeeded, Failed or Invalid.', priority: 1 };
const rolloutColumns: readonly PrinterColumn[] = [ready, accepted, failed, command, commandPhase, age];

export const RESOURCES: readonly ResourceInfo[] = [
  {
    kind: 'StorageEventPlugin',
    plural: 'storageeventplugins',
    singular: 'storageeventplugin',
    shortName: 'sep',
    description: 'A peripety agent plugin (collector, parser or receiver) and the nodes that run it. The controller renders it into each selected node\'s agent configuration; the name is the plugin instance\'s name there.',
    spec: StorageEventPluginSpec,
    status: StorageEventPluginStatus,
    columns: [
      { name: 'Type', type: 'string', jsonPath: '.spec.type', description: 'collector, parser or receiver.' },
      { name: 'Plugin', type: 'string', jsonPath: '.spec.plugin', description: 'The implementation.' },
      { name: 'State', type: 'string', jsonPath: '.spec.state', description: 'Running or Stopped.' },
      ...rolloutColumns,
    ],
  },
  {
    kind: 'StorageBackend',
    plural: 'storagebackends',
    singular: 'storagebackend',
    shortName: 'sbe',
    description: 'A storage backend of the agents\' StorageManager (the elos EventLogging plugin entry): where events are stored, which ones (filters), and on which nodes. The name is the backend\'s name on each node.',
    spec: StorageBackendSpec,
    status: StorageBackendStatus,
    columns: [
      { name: 'Backend', type: 'string', jsonPath: '.spec.backend', description: 'The built-in backend or module file.' },
      { name: 'Run', type: 'string', jsonPath: '.spec.run', description: 'always, never or trigger.' },
      ...rolloutColumns,
    ],
  },
];

/** A zod schema as a structural OpenAPI schema: input side (fields with defaults are optional; the API server fills them in). */
export function structuralOf(schema: z.ZodType): StructuralSchema {
  return toStructural(z.toJSONSchema(schema, { io: 'input', unrepresentable: 'throw' }));
}

/** The openAPIV3Schema of one resource: the envelope around the generated spec and status. */
export function openApiSchemaOf(r: ResourceInfo): StructuralSchema {
  return {
    description: r.description,
    type: 'object',
    required: ['spec'],
    properties: {
      apiVersion: {
        description: `APIVersion of this representation of the object: ${API_VERSION}.`,
        type: 'string',
      },
      kind: {
        description: `The kind of the object: ${r.kind}.`,
        type: 'string',
      },
      // Only restrictions on name are allowed here (structural schema rule), and no description.
      metadata: {
        type: 'object',
        properties: {
          name: {
            type: 'string',
            maxLength: MAX_RESOURCE_NAME,
            pattern: RESOURCE_NAME_RE.source,
          },
        },
      },
      spec: structuralOf(r.spec),
      status: structuralOf(r.status),
    },
  };
}

function crdOf(r: ResourceInfo): Record<string, unknown> {
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: {
      name: `${r.plural}.${GROUP}`,
      labels: { 'app.kubernetes.io/name': 'peripety', 'app.kubernetes.io/part-of': 'peripety' },
    },
    spec: {
      group: GROUP,
      scope: 'Cluster',
      names: {
        kind: r.kind,
        listKind: `${r.kind}List`,
        plural: r.plural,
        singular: r.singular,
        shortNames: [r.shortName],
        categories: ['peripety'],
      },
      versions: [
        {
          name: VERSION,
          served: true,
          storage: true,
          subresources: { status: {} },
          additionalPrinterColumns: r.columns.map((c) => ({ ...c })),
          schema: { openAPIV3Schema: openApiSchemaOf(r) },
        },
      ],
    },
  };
}

const HEADER = '# Generated by hack/gen-crds.ts from the zod schemas in src/crd/schemas.ts: do not edit.\n'
  + '# Regenerate with: hack/run node hack/gen-crds.ts\n';

/** Every CRD as the file crds/ holds: name → YAML text. */
export function renderCrds(): Map<string, string> {
  const files = new Map<string, string>();
  for (const r of RESOURCES) {
    // lineWidth 0: no folding, so a changed description changes one line
    files.set(`${r.plural}.${GROUP}.yaml`, HEADER + stringify(crdOf(r), { lineWidth: 0, aliasDuplicateObjects: false }));
  }
  return files;
}
