// Agent registration: a coordination.k8s.io/v1 Lease `peripety-agent-<node>`
// in the agent's namespace, renewed every 10 s, whose annotations tell the
// controller where the agent's control API is and what it applied
// (docs/agent-api.md). Failures are logged rate-limited and retried with
// backoff; they never stop the agent. With the agent's Pod known (--pod-name,
// --pod-uid), the Lease is owned by that Pod, so the garbage collector
// deletes it with the Pod (src/contracts/owner.ts).
import { backoffDelay } from '../contracts/backoff.ts';
import { RateLimitedLog } from '../log/rate-limit.ts';
import type { Logger } from '../log/logger.ts';
import type { KubeClient } from './http.ts';
import { leaseOwnerReferences, ownedOnlyBy, type OwnerReference, type PodOwner } from '../contracts/owner.ts';

import { ANNOTATION_DEGRADED, ANNOTATION_ENDPOINT, ANNOTATION_GENERATION, ANNOTATION_HASH, DEGRADED_SEPARATOR } from '../contracts/lease.ts';
const MAX_DEGRADED_CHARS = 1024;
const LEASE_DURATION_SECONDS = 30;
/** ±20 %: agents that lost the API server together do not come back together */
const RETRY_JITTER = { min: 0.8, max: 1.2 } as const;

interface RegistrationOptions {
  client: Pick<KubeClient, 'request'>;
  log: Logger;
  namespace: string;
  nodeName: string;
  /** the control API URL the controller calls */
  endpoint: string;
  renewMs?: number;
  maxBackoffMs?: number;
  /** what the agent reports as degraded (read at every renewal) */
  degraded?: () => readonly string[];
  /** the agent's own Pod: the Lease's one owner (none when absent) */
  owner?: PodOwner | null;
}

interface Lease {
  metadata?: { name?: string; resourceVersion?: string; annotations?: Record<string, string>; labels?: Record<string, string>; ownerReferences?: OwnerReference[] };
  spec?: Record<string, unknown>;
}

/** Kubernetes MicroTime: RFC 3339 with microseconds. */
export function microTime(d: Date = new Date()): string {
  return d.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

function leaseName(nodeName: string): string {
  return `peripety-agent-${nodeName}`.slice(0, 253);
}

export class AgentRegistration {
  private readonly opts: RegistrationOptions;
  private applied: { generation: number; hash: string } | null = null;
  private timer: NodeJS.Timeout | null = null;
  private stopped = true;
  private failures = 0;
  private running: Promise<void> = Promise.resolve();
  private readonly limiter = new RateLimitedLog({ intervalMs: 10_000 });
  private acquireTime = microTime();
  /** resolves after the next successful write (tests, first registration) */
  private okWaiters: (() => void)[] = [];

  constructor(opts: RegistrationOptions) {
    this.opts = opts;
  }

  get name(): string {
    return leaseName(this.opts.nodeName);
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.kick(0);
  }

  /** What the agent applied: written to the Lease at once (and on every renewal). */
  setApplied(applied: { generation: number; hash: string }): void {
    this.applied = applied;
    if (!this.stopped) this.kick(0);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.running;
  }

  /** Resolves after the next successful create/update. */
  synced(): Promise<void> {
    return new Promise((resolve) => this.okWaiters.push(resolve));
  }

  private kick(delayMs: number): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = null;
      this.running = this.running.then(() => this.once()).catch(() => {});
    }, delayMs);
    this.timer.unref();
  }

  private desired(): { annotations: Record<string, string>; spec: Record<string, unknown> } {
    const annotations: Record<string, string> = { [ANNOTATION_ENDPOINT]: this.opts.endpoint };
    annotations[ANNOTATION_GENERATION] = String(this.applied?.generation ?? 0);
    annotations[ANNOTATION_HASH] = this.applied?.hash ?? '';
    // the generation alone would say "applied" while a backend of it is not running
    if (this.opts.degraded) {
      const degraded = this.opts.degraded().join(DEGRADED_SEPARATOR);
      annotations[ANNOTATION_DEGRADED] = degraded.length > MAX_DEGRADED_CHARS ? `${degraded.slice(0, MAX_DEGRADED_CHARS - 1)}…` : degraded;
    }
    return {
      annotations,
      spec: {
        holderIdentity: this.opts.nodeName,
        leaseDurationSeconds: LEASE_DURATION_SECONDS,
        acquireTime: this.acquireTime,
        renewTime: microTime(),
      },
    };
  }

  private async once(): Promise<void> {
    if (this.stopped) return;
    const { client, namespace } = this.opts;
    const base = `/apis/coordination.k8s.io/v1/namespaces/${encodeURIComponent(namespace)}/leases`;
    const name = this.name;
    const appliedAtStart = this.applied;
    try {
      const d = this.desired();
      const got = await client.request<Lease>('GET', `${base}/${encodeURIComponent(name)}`);
      const owner = this.opts.owner ?? null;
      let r;
      if (got.status === 404) {
        const ownerReferences = leaseOwnerReferences(undefined, owner);
        r = await client.request<Lease>('POST', base, {
          apiVersion: 'coordination.k8s.io/v1',
          kind: 'Lease',
          metadata: { name, namespace, labels: { 'app.kubernetes.io/name': 'peripety-agent' }, annotations: d.annotations, ...(ownerReferences ? { ownerReferences } : {}) },
          spec: d.spec,
        });
      } else if (got.status === 200) {
        const cur = got.body;
        const was = cur.metadata?.ownerReferences;
        const ownerReferences = leaseOwnerReferences(was, owner);
        // a replacement Pod takes over the Lease of the Pod before it: left owned by that Pod, it
        // would be deleted under this agent once the collector processes the old Pod's deletion
        if (owner && !ownedOnlyBy(was, owner)) this.opts.log.info({ lease: name, pod: owner.name, was: (was ?? []).map((o) => `${o.kind}/${o.name}`) }, 'the agent\'s Lease is now owned by this agent\'s Pod');
        const { ownerReferences: _, ...metadata } = cur.metadata ?? {};
        r = await client.request<Lease>('PUT', `${base}/${encodeURIComponent(name)}`, {
          apiVersion: 'coordination.k8s.io/v1',
          kind: 'Lease',
          metadata: { ...metadata, annotations: { ...cur.metadata?.annotations, ...d.annotations }, ...(ownerReferences ? { ownerReferences } : {}) },
          spec: { ...cur.spec, ...d.spec },
        });
      } else {
        throw new Error(`GET lease ${namespace}/${name}: HTTP ${got.status}: ${got.text.slice(0, 200)}`);
      }
      if (r.status !== 200 && r.status !== 201) throw new Error(`${got.status === 404 ? 'create' : 'update'} lease ${namespace}/${name}: HTTP ${r.status}: ${r.text.slice(0, 200)}`);
      if (this.failures > 0) this.opts.log.info({ lease: name, failures: this.failures }, 'agent registration renewed again');
      this.failures = 0;
      const w = this.okWaiters;
      this.okWaiters = [];
      w.forEach((f) => f());
      // an apply that came in while this request ran is written at once
      if (!this.stopped) this.kick(this.applied !== appliedAtStart ? 0 : (this.opts.renewMs ?? 10_000));
    } catch (err) {
      this.failures++;
      const suppressed = this.limiter.admit('registration');
      if (suppressed !== null) this.opts.log.warn({ lease: name, err: (err as Error).message.slice(0, 300), failures: this.failures, suppressed }, 'agent registration failed; retrying');
      if (!this.stopped) this.kick(backoffDelay(this.failures, { initialMs: 500, maxMs: this.opts.maxBackoffMs ?? 10_000, jitter: RETRY_JITTER }));
    }
  }
}
