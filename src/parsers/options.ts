// The parsers that exist, by name: pure, so that configuration checks (the
// default configuration, the CRD code, the chart) name them without loading
// them. Parsers take no options (a parser section has only the common keys).
// index.ts's PARSERS must have exactly these names (the compiler checks it).
const NAMES = ['scsi', 'nvme', 'block', 'multipath', 'dm', 'lvm', 'mdraid', 'fs'] as const;
export type ParserName = (typeof NAMES)[number];
export const PARSER_NAMES: readonly string[] = NAMES;
