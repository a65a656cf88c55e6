// Leader election with a coordination.k8s.io/v1 Lease (client-go's
// leaderelection, reduced): the holder renews every `renewMs`; a candidate
// takes the Lease when its holder is empty or the Lease record has not
// changed for `leaseDurationMs` by the candidate's own clock (no clock
// comparison between machines). The leader stops acting at
// `renewDeadlineMs` after the start of its last successful renew — before a
// candidate, which waits `leaseDurationMs` from when it saw that renew, can
// take over — and at once on a failed renew that finds another holder.
// With `owner` (the replica's own Pod), every acquire and renew makes that Pod
// the Lease's one owner: the garbage collector deletes the Lease with the
// leader's Pod (helm uninstall leaves nothing), and a new leader replaces the
// old leader's reference. A Lease gone (deleted by the collector) is created
// again by the next attempt.
import type { KubeClient } from '../k8s/http.ts';
import type { KubeLease } from '../k8s/informer.ts';
import { microTime } from '../k8s/registration.ts';
import type { Logger } from '../log/logger.ts';
import { leaseOwnerReferences, type OwnerReference, type PodOwner } from '../contracts/owner.ts';

export interface LeaderElectorOptions {
  client: Pick<KubeClient, 'call'>;
  namespace: string;
  name: string;
  identity: string;
  /** this replica's own Pod: the Lease's one owner while it leads (none when absent) */
  owner?: PodOwner | null;
  leaseDurationMs?: number;
  renewMs?: number;
  retryMs?: number;
  /** < leaseDurationMs: stop leading this long after the last successful renew started */
  renewDeadlineMs?: number;
  onStartedLeading: () => void;
  onStoppedLeading: () => void;
  log: Logger;
}

const statusOf = (err: unknown): number | undefined => {
  const e = err as { code?: unknown; statusCode?: unknown };
  return typeof e.code === 'number' ? e.code : typeof e.statusCode === 'number' ? e.statusCode : undefined;
};

export class LeaderElector {
  readonly leaseDurationMs: number;
  readonly renewMs: number;
  readonly retryMs: number;
  readonly renewDeadlineMs: number;
  private leading = false;
  private validUntil = 0;
  private stopped = false;
  private observed = '';
  private observedAt = 0;
  private loop: Promise<void> | null = null;
  private readonly path: string;
  private wake: (() => void) | null = null;
  private expiry: NodeJS.Timeout | null = null;

  private readonly o: LeaderElectorOptions;

  constructor(o: LeaderElectorOptions) {
    this.o = o;
    this.leaseDurationMs = o.leaseDurationMs ?? 15_000;
    this.renewMs = o.renewMs ?? 5_000;
    this.retryMs = o.retryMs ?? 2_000;
    this.renewDeadlineMs = o.renewDeadlineMs ?? Math.max(this.renewMs, this.leaseDurationMs - this.renewMs);
    this.path = `/apis/coordination.k8s.io/v1/namespaces/${encodeURIComponent(o.namespace)}/leases`;
  }

  private read(): Promise<KubeLease> {
    return this.o.client.call<KubeLease>('GET', `${this.path}/${encodeURIComponent(this.o.name)}`);
  }

  private replace(lease: KubeLease): Promise<KubeLease> {
    return this.o.client.call<KubeLease>('PUT', `${this.path}/${encodeURIComponent(this.o.name)}`, lease);
  }

  /** leading now: true only while the last successful renew is recent enough */
  isLeader(): boolean {
    return this.leading && Date.now() < this.validUntil;
  }

  start(): void {
    this.loop ??= this.run();
  }

  /** stop; with release, hand the Lease back so a standby need not wait the lease time */
  async stop(release = true): Promise<void> {
    this.stopped = true;
    this.validUntil = 0; // isLeader() is false from now on
    this.wake?.();
    await this.loop;
    const was = this.leading;
    this.lose('stopped');
    if (release && was) {
      try {
        const lease = await this.read();
        if (lease.spec?.holderIdentity === this.o.identity) {
          delete lease.spec.holderIdentity;
          lease.spec.leaseDurationSeconds = 1;
          await this.replace(lease);
        }
      } catch (err) {
        this.o.log.warn({ err: (err as Error).message }, 'leader election: could not release the Lease');
      }
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.wake = null;
        resolve();
      }, ms);
      this.wake = () => {
        clearTimeout(t);
        this.wake = null;
        resolve();
      };
    });
  }

  private lose(why: string): void {
    if (this.expiry) clearTimeout(this.expiry);
    this.expiry = null;
    if (!this.leading) return;
    this.leading = false;
    this.validUntil = 0;
    this.o.log.warn({ identity: this.o.identity, why }, 'leader election: stopped leading');
    this.o.onStoppedLeading();
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      const started = Date.now();
      let ok = false;
      try {
        ok = await this.tryAcquireOrRenew(started);
      } catch (err) {
        this.o.log.warn({ err: (err as Error).message }, 'leader election: Lease request failed');
      }
      if (this.stopped) break;
      if (ok) {
        this.validUntil = started + this.renewDeadlineMs;
        if (this.expiry) clearTimeout(this.expiry);
        this.expiry = setTimeout(() => this.lose('renew deadline passed'), this.validUntil - Date.now());
        this.expiry.unref();
        if (!this.leading) {
          this.leading = true;
          this.o.log.info({ identity: this.o.identity }, 'leader election: started leading');
          this.o.onStartedLeading();
        }
      } else if (this.leading && Date.now() >= this.validUntil) {
        this.lose('renew failed');
      }
      await this.sleep(this.leading ? this.renewMs : this.retryMs);
    }
  }

  private async tryAcquireOrRenew(now: number): Promise<boolean> {
    const { namespace, name, identity } = this.o;
    const durationS = Math.ceil(this.leaseDurationMs / 1000);
    let lease: KubeLease;
    try {
      lease = await this.read();
    } catch (err) {
      if (statusOf(err) !== 404) throw err;
      // none yet, or deleted with the Pod of the leader before (garbage collector): a new one
      const ownerReferences = leaseOwnerReferences(undefined, this.o.owner ?? null);
      try {
        const t = microTime(new Date(now));
        await this.o.client.call('POST', this.path, {
          apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name, namespace, ...(ownerReferences ? { ownerReferences } : {}) },
          spec: { holderIdentity: identity, leaseDurationSeconds: durationS, acquireTime: t, renewTime: t, leaseTransitions: 0 },
        });
      } catch (e) {
        // another replica created it first: read it next time
        if (statusOf(e) === 409) return false;
        throw e;
      }
      return true;
    }
    const spec = lease.spec ?? {};
    const record = `${spec.holderIdentity ?? ''}|${lease.metadata?.resourceVersion ?? ''}`;
    if (record !== this.observed) {
      this.observed = record;
      this.observedAt = now;
    }
    const holder = spec.holderIdentity ?? '';
    if (holder !== '' && holder !== identity) {
      const held = Math.max(this.leaseDurationMs, (spec.leaseDurationSeconds ?? 0) * 1000);
      if (now < this.observedAt + held) {
        if (this.leading) this.lose(`the Lease is held by ${holder}`);
        return false;
      }
    }
    const taking = holder !== identity;
    lease.spec = {
      ...spec,
      holderIdentity: identity,
      leaseDurationSeconds: durationS,
      renewTime: microTime(new Date(now)),
      ...(taking ? { acquireTime: microTime(new Date(now)), leaseTransitions: (spec.leaseTransitions ?? 0) + 1 } : {}),
    };
    // the leader's own Pod, replacing the previous leader's
    const ownerReferences = leaseOwnerReferences(lease.metadata?.ownerReferences as OwnerReference[] | undefined, this.o.owner ?? null);
    if (ownerReferences && lease.metadata) lease.metadata.ownerReferences = ownerReferences;
    try {
      const updated = await this.replace(lease);
      this.observed = `${identity}|${updated.metadata?.resourceVersion ?? ''}`;
      this.observedAt = now;
      return true;
    } catch (err) {
      // 409: changed since the read; 404: deleted since (the collector, with the old leader's Pod)
      if (statusOf(err) === 409 || statusOf(err) === 404) return false;
      throw err;
    }
  }
}
