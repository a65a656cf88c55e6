// What a collector is to the agent, and what the agent gives it: the
// contract between the agent (src/agent) and the collectors (src/kmsg,
// src/udev). The registry of implementations is src/agent/plugins.ts.
import type { Logger } from 'pino';
import type { StorageEvent } from '../events/schema.ts';
import type { AgentMetrics } from '../metrics/agent-metrics.ts';
import type { DeviceResolver } from './device.ts';
import type { PluginSpec } from './plugin.ts';
import type { KernelRecord } from './record.ts';
import type { Ack } from './ack.ts';

/** Where a collector hands what it read: the agent routes it to the current bus. */
export interface CollectorSink {
  record(rec: KernelRecord, ack: Ack): void;
  overrun(lost: number, afterSeq: number, nextSeq: number, ack: Ack): void;
  /**
   * An event the collector built itself from already structured input (udev
   * uevents carry typed properties; there is no text to parse): straight to
   * every receiver, as a parser's synthetic event would go.
   */
  publish(ev: StorageEvent, ack: Ack, producer: string): void;
}

export interface CollectorDeps {
  stateDir: string;
  /** the node name put in events ([main] hostname, --node-name, $NODE_NAME, the host name) */
  hostname: string;
  bootId: string;
  log: Logger;
  metrics: AgentMetrics;
  /** device identity cache: collectors that see devices come and go invalidate it */
  resolver: () => DeviceResolver | null;
  /** storage can take records read again after a loss held the read position (absent: never) */
  replayReady?: () => boolean;
}

export interface Collector {
  readonly name: string;
  /** false when start() left the collector down (it logged why); the agent reports it in peripety_plugin_up */
  readonly up?: boolean;
  /** Start reading; throws with a clear message when it cannot (the agent reports it). */
  start(): void;
  stop(): void;
  /** Persist what must survive a restart (read positions) after the pipeline drained. */
  flush(): void;
}

/** What building a collector gets: the agent's dependencies and where to hand records. */
interface CollectorBuildDeps extends CollectorDeps {
  sink: CollectorSink;
}

export interface CollectorPlugin extends PluginSpec<Record<string, unknown>, CollectorBuildDeps, Collector> {
  /** set when at most one enabled section may use this plugin: why (for the configuration error) */
  readonly onlyOne?: string;
}
