// The parsers that exist: pure (name, description, options), so that
// configuration checks (the default configuration, the CRD code, the chart)
// name them without loading them. Parsers take no options (a parser section
// has only the common keys). index.ts's PARSERS must have exactly these names
// (the compiler checks it).
import { z } from 'zod';
import type { PluginInfo } from '../contracts/plugin.ts';

/** A parser section has only the common keys. */
const NO_OPTIONS = z.strictObject({});
type NoOptions = z.infer<typeof NO_OPTIONS>;

const parser = (name: string, description: string): PluginInfo<NoOptions> => ({ name, description, options: NO_OPTIONS });

export const PARSER_PLUGINS = {
  scsi: parser('scsi', 'the SCSI midlayer, sd and libata (ataN messages)'),
  nvme: parser('nvme', 'NVMe controllers and namespaces'),
  block: parser('block', 'the block layer and buffer cache: request and buffer I/O errors, capacity changes, hung tasks, suppressed messages'),
  multipath: parser('multipath', 'dm-multipath: path failures and reinstatements, the queue_if_no_path timeout'),
  dm: parser('dm', 'device-mapper targets other than multipath, thin and snapshot: mirror and its dirty region log, table loads, dm-raid'),
  lvm: parser('lvm', "LVM's device-mapper targets: thin pools and snapshots"),
  mdraid: parser('mdraid', 'Linux software RAID (md): arrays and their member disks'),
  fs: parser('fs', 'filesystems: ext4 (and ext3/ext2), jbd2, xfs, btrfs'),
} as const;
export type ParserName = keyof typeof PARSER_PLUGINS;
export const PARSER_NAMES: readonly string[] = Object.keys(PARSER_PLUGINS);
