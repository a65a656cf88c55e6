// The kmsg collector's options (a [kmsg] section): pure, so that configuration
// checks (the CRD code, the controller) read them without loading the collector.
import { z } from 'zod';
import type { PluginInfo } from '../contracts/plugin.ts';

export const KmsgOptions = z.strictObject({
  path: z.string().min(1).default('/dev/kmsg'),
  /** resume after the saved position (default), start at the end, or at the oldest record */
  start: z.enum(['resume', 'end', 'beginning']).default('resume'),
  /** also accept records user space wrote to /dev/kmsg (facility != 0): for tests and demos only */
  accept_user_facility: z.boolean().default(false),
});
export type KmsgOptions = z.infer<typeof KmsgOptions>;

export const KMSG_PLUGIN: PluginInfo<KmsgOptions> = {
  name: 'kmsg',
  description: 'the kernel log (/dev/kmsg), read on from the saved position after a restart',
  options: KmsgOptions,
};
