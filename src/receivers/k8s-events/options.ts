// The k8s-events receiver's options: pure, so that configuration checks (the
// CRD code, the controller) read them without loading the receiver.
import { z } from 'zod';
import type { PluginInfo } from '../../contracts/plugin.ts';

export const K8sEventsOptions = z.strictObject({
  kubeconfig: z.string().min(1).max(4096).optional(),
  node_name: z.string().min(1).max(253).optional(),
  namespace: z.string().regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/).max(63).default('default'),
  reporting_controller: z.string().min(1).max(253).regex(/^([a-z0-9]([-a-z0-9.]*[a-z0-9])?\/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/).default('peripety.io/agent'),
  reporting_instance: z.string().min(1).max(128).optional(),
  action: z.string().min(1).max(128).default('Detected'),
  min_severity: z.enum(['info', 'warn', 'error']).default('warn'),
  series_window_s: z.number().int().min(1).max(86_400).default(600),
  rate: z.number().positive().max(1000).default(1),
  burst: z.number().int().min(1).max(10_000).default(10),
  max_keys: z.number().int().min(1).max(100_000).default(1024),
  summary_interval_s: z.number().min(0).max(3600).default(10),
  timeout_ms: z.number().int().min(100).max(120_000).default(10_000),
  queue_size: z.number().int().min(1).max(10_000_000).optional(),
});
export type K8sEventsOptions = z.infer<typeof K8sEventsOptions>;

export const K8S_EVENTS_PLUGIN: PluginInfo<K8sEventsOptions> = {
  name: 'k8s-events',
  description: "Kubernetes Events on the Node: repeats grow one Event's series, API writes rate-limited",
  options: K8sEventsOptions,
};
