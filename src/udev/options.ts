// The udev collector's options (a [udev] section): pure, so that configuration
// checks (the CRD code, the controller) read them without loading the collector.
import { z } from 'zod';
import type { PluginInfo } from '../contracts/plugin.ts';

const absPath = z.string().min(1).max(4096).refine((s) => s.startsWith('/'), { message: 'must be an absolute path' });

export const UdevOptions = z.strictObject({
  /** uevent subsystems that become events; `*` for all */
  subsystems: z.array(z.string().regex(/^(\*|[A-Za-z0-9_.:-]{1,64})$/, 'must be a subsystem name or *')).min(1).max(64).default(['block']),
  /**
   * kernel: the kernel's uevents (group 1) only. udev: udevd's (group 2) only,
   * with its ID_* properties; nothing arrives without udevd. both: both, the
   * udev copy preferred (see udev_wait_ms). auto: both when udevd runs
   * (udev_control_path exists at start), else kernel.
   */
  groups: z.enum(['auto', 'kernel', 'udev', 'both']).default('auto'),
  /** udevd's control socket: its presence means udevd runs (auto) */
  udev_control_path: absPath.default('/run/udev/control'),
  /** both: how long a kernel uevent waits for udevd's copy before it goes out alone */
  udev_wait_ms: z.number().int().min(0).max(60_000).default(2_000),
  /** at most this many kernel uevents wait for their udev copy; beyond, the oldest goes out alone */
  max_pending: z.number().int().min(1).max(100_000).default(4_096),
  /** socket receive buffer: a burst larger than this while the agent is busy is lost (and counted) */
  receive_buffer_bytes: z.number().int().min(64 * 1024).max(1 << 30).default(16 * 1024 * 1024),
});
export type UdevOptions = z.infer<typeof UdevOptions>;

export const UDEV_PLUGIN: PluginInfo<UdevOptions> = {
  name: 'udev',
  description: 'block devices coming, going and changing: uevents from the kernel or udevd (netlink)',
  options: UdevOptions,
};
