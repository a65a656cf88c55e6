// The receivers of a configuration, built all or none: the agent's pipeline
// and `peripety receive` build them the same way.
import os from 'node:os';
import type { AgentConfig } from '../config/schema.ts';
import type { QueuedReceiver } from '../receivers/queued.ts';
import { buildPlugin, pluginNamed } from '../contracts/plugin.ts';
import { builtinReceivers, RECEIVER_SPECS, type ReceiverDepsFull } from './plugins.ts';

/**
 * One receiver per enabled receiver section of `deps.config`, in the order
 * of the sections, then (`builtin`) the ones every agent runs. When one
 * cannot be built, those built already are closed at once (without waiting
 * for their queues) and the error is thrown: a half-built set never runs.
 */
export function createReceivers(deps: ReceiverDepsFull, opts: { builtin: boolean }): QueuedReceiver[] {
  const out: QueuedReceiver[] = [];
  try {
    for (const p of deps.config.plugins) {
      if (p.type !== 'receiver' || !p.enabled) continue;
      const plugin = pluginNamed(RECEIVER_SPECS, p.plugin);
      if (!plugin) throw new Error(`[${p.name}]: no receiver plugin named "${p.plugin}"`);
      out.push(buildPlugin(plugin, p.name, p.options, deps));
    }
    if (opts.builtin) out.push(...builtinReceivers(deps));
  } catch (err) {
    for (const r of out) void r.close(0);
    throw err;
  }
  return out;
}

/**
 * The node name every event carries: [main] hostname, else --node-name (the
 * agent in Kubernetes mode; `peripety receive` has none), else $NODE_NAME,
 * else this host's name.
 */
export function eventHostname(config: AgentConfig, nodeName: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  return config.main.hostname ?? nodeName ?? env.NODE_NAME ?? os.hostname();
}
