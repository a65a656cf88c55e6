// The kmsg collector's options (a [kmsg] section): pure, so that configuration
// checks (the CRD code, the controller) read them without loading the collector.
import { z } from 'zod';

export const KmsgOptions = z.strictObject({
  path: z.string().min(1).default('/dev/kmsg'),
  /** resume after the saved position (default), start at the end, or at the oldest record */
  start: z.enum(['resume', 'end', 'beginning']).default('resume'),
  /** also accept records user space wrote to /dev/kmsg (facility != 0): for tests and demos only */
  accept_user_facility: z.boolean().default(false),
});
export type KmsgOptions = z.infer<typeof KmsgOptions>;
