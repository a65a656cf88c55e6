// The parser registry: implementation name → parser. A parser section's
// `plugin` (default: the section name) picks one of these.
import type { System } from '../events/schema.ts';
import { classify } from '../kmsg/classify.ts';
import type { KernelRecord } from '../contracts/record.ts';
import { parser as block } from './block.ts';
import { parser as dm } from './dm.ts';
import { parser as fs } from './fs.ts';
import { parser as lvm } from './lvm.ts';
import { parser as mdraid } from './mdraid.ts';
import { parser as multipath } from './multipath.ts';
import { parser as nvme } from './nvme.ts';
import { parser as scsi } from './scsi.ts';
import type { Parser, ParseResult } from '../contracts/parser.ts';
import type { ParserName } from './options.ts';

// the same names as options.ts's PARSER_NAMES (what configuration checks use)
export const PARSERS: Readonly<Record<string, Parser>> = { scsi, nvme, block, multipath, dm, lvm, mdraid, fs } satisfies Record<ParserName, Parser>;


/** The parser whose default systems include `system` (each system has exactly one). */
const BY_SYSTEM = new Map<System, Parser>();
for (const p of Object.values(PARSERS)) for (const s of p.systems) BY_SYSTEM.set(s, p);

/**
 * Classify a record and run the default parser for its system. Offline
 * helpers and tests use this; the agent routes through the bus instead.
 */
export function parseKernelRecord(rec: KernelRecord): { system: System | null; result: ParseResult } {
  const system = classify(rec);
  if (system === null) return { system, result: null };
  const parser = BY_SYSTEM.get(system);
  if (!parser) return { system, result: null };
  return { system, result: parser.parse({ ...rec, system }) };
}
