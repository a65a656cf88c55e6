// A list-and-watch cache of one kind of Kubernetes object (client-go's
// informer, reduced to what the controller uses): list, then watch from the
// list's resourceVersion; 'add', 'update' and 'delete' for each change, the
// cache readable at any time (`list`, `get`). A watch the server ends (its
// timeoutSeconds) is started again from the last resourceVersion seen; a
// watch refused with 410 Gone (that version is compacted away) lists again and
// reports the differences as events. Any other failure is an 'error' event and
// the informer stops: its owner decides when to `start()` again (the
// controller backs off, src/controller/controller.ts).
//
// `transform` keeps only what the owner reads of each object (a Node's labels
// and addresses, not its images and conditions; no managedFields anywhere):
// the cache is the controller's largest memory (issue 14).
import type { KubeClient, WatchEvent, WatchHandle } from './http.ts';

export interface ObjectMeta {
  name?: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  ownerReferences?: { apiVersion: string; kind: string; name: string; uid: string; controller?: boolean; blockOwnerDeletion?: boolean }[];
  managedFields?: unknown;
  [k: string]: unknown;
}

export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata?: ObjectMeta;
}

/** A Lease (coordination.k8s.io/v1); times are RFC 3339 MicroTime strings. */
export interface KubeLease extends KubeObject {
  spec?: {
    holderIdentity?: string;
    leaseDurationSeconds?: number;
    acquireTime?: string;
    renewTime?: string;
    leaseTransitions?: number;
  };
}

/** A Node, as far as the controller reads it. */
export interface KubeNode extends KubeObject {
  status?: { addresses?: { type: string; address: string }[] };
}

export type InformerEvent = 'add' | 'update' | 'delete';

interface List<T> {
  metadata?: { resourceVersion?: string; continue?: string };
  items?: T[];
}

/**
 * Objects per page of a list (client-go's informers use 500): a page is one
 * answer held whole in memory before it is parsed, and a real Node is 10–20
 * KiB of JSON (its images, conditions, managedFields), so a cluster's whole
 * list in one answer would be tens of MiB.
 */
const PAGE = 250;
/** the largest page taken */
const MAX_PAGE_BYTES = 64 << 20;

/** The server ends a watch after this long (±, spread so informers do not rewatch together). */
const WATCH_SECONDS = 300;

const keyOf = (o: KubeObject): string => `${o.metadata?.namespace ?? ''}/${o.metadata?.name ?? ''}`;

export class Informer<T extends KubeObject> {
  private readonly client: Pick<KubeClient, 'call' | 'watch'>;
  private readonly path: string;
  private readonly transform: (o: T) => T;
  private readonly cache = new Map<string, T>();
  private readonly handlers: { [E in InformerEvent]: ((o: T) => void)[] } & { error: ((err: unknown) => void)[] } = { add: [], update: [], delete: [], error: [] };
  private resourceVersion = '';
  private handle: WatchHandle | null = null;
  private running = false;
  /** bumped by every start and stop: callbacks of an older run do nothing */
  private run = 0;
  private hasSynced = false;

  /** `path`: the collection (e.g. /api/v1/nodes); `transform`: what of each object is kept (default: all but managedFields) */
  constructor(client: Pick<KubeClient, 'call' | 'watch'>, path: string, transform: (o: T) => T = stripManagedFields) {
    this.client = client;
    this.path = path;
    this.transform = transform;
  }

  on(event: InformerEvent, f: (o: T) => void): void;
  on(event: 'error', f: (err: unknown) => void): void;
  on(event: InformerEvent | 'error', f: ((o: T) => void) | ((err: unknown) => void)): void {
    (this.handlers[event] as unknown[]).push(f);
  }

  /** true once a list succeeded: the cache holds the whole collection */
  get synced(): boolean {
    return this.hasSynced;
  }

  /** List, then watch. Resolves after the list (rejects never: a failed list is an 'error' event). */
  async start(): Promise<void> {
    this.handle?.stop();
    const run = ++this.run;
    this.running = true;
    await this.relist(run);
  }

  async stop(): Promise<void> {
    this.run++;
    this.running = false;
    this.handle?.stop();
    this.handle = null;
  }

  list(): T[] {
    return [...this.cache.values()];
  }

  get(name: string, namespace?: string): T | undefined {
    return this.cache.get(`${namespace ?? ''}/${name}`);
  }

  private emit(event: InformerEvent, o: T): void {
    for (const f of this.handlers[event]) f(o);
  }

  private fail(run: number, err: unknown): void {
    if (run !== this.run) return;
    // what the failed run still delivers is ignored
    this.run++;
    this.running = false;
    this.handle = null;
    for (const f of this.handlers.error) f(err);
  }

  /** the whole collection, page by page (one consistent snapshot: the pages share the first one's resourceVersion) */
  private async listAll(): Promise<{ items: T[]; resourceVersion: string }> {
    const items: T[] = [];
    let resourceVersion = '';
    let cont = '';
    do {
      const q = `limit=${PAGE}${cont ? `&continue=${encodeURIComponent(cont)}` : ''}`;
      const page = await this.client.call<List<T>>('GET', `${this.path}?${q}`, undefined, { timeoutMs: 60_000, maxBytes: MAX_PAGE_BYTES });
      // only what is kept, page by page: the raw page goes when the next one comes
      for (const raw of page.items ?? []) items.push(this.transform(raw));
      resourceVersion ||= page.metadata?.resourceVersion ?? '';
      cont = page.metadata?.continue ?? '';
    } while (cont !== '');
    return { items, resourceVersion };
  }

  private async relist(run: number): Promise<void> {
    let list: { items: T[]; resourceVersion: string };
    try {
      // a continue token that expired (410) fails the list: the owner's restart lists from the start
      list = await this.listAll();
    } catch (err) {
      this.fail(run, err);
      return;
    }
    if (run !== this.run) return;
    const seen = new Set<string>();
    for (const o of list.items) {
      const k = keyOf(o);
      seen.add(k);
      const old = this.cache.get(k);
      this.cache.set(k, o);
      if (!old) this.emit('add', o);
      else if (old.metadata?.resourceVersion !== o.metadata?.resourceVersion) this.emit('update', o);
    }
    for (const [k, o] of this.cache) {
      if (seen.has(k)) continue;
      this.cache.delete(k);
      this.emit('delete', o);
    }
    this.resourceVersion = list.resourceVersion;
    this.hasSynced = true;
    this.watch(run);
  }

  private watch(run: number): void {
    if (run !== this.run || !this.running) return;
    const seconds = Math.round(WATCH_SECONDS * (0.9 + Math.random() * 0.2));
    const q = `watch=1&allowWatchBookmarks=true&timeoutSeconds=${seconds}&resourceVersion=${encodeURIComponent(this.resourceVersion)}`;
    let gone = false;
    this.handle = this.client.watch(`${this.path}?${q}`, (e) => {
      if (run !== this.run) return;
      if (this.onEvent(e) === 'gone') {
        gone = true;
        this.handle?.stop();
        this.handle = null;
        void this.relist(run);
      }
    }, (err) => {
      if (run !== this.run || gone) return;
      if (err) {
        // 410 on the request itself: the version is too old; list again
        if ((err as { code?: unknown }).code === 410) void this.relist(run);
        else this.fail(run, err);
        return;
      }
      this.watch(run);
    }, { idleMs: (seconds + 60) * 1000 });
  }

  private onEvent(e: WatchEvent): 'gone' | void {
    const obj = e.object as T & { code?: unknown; message?: unknown };
    switch (e.type) {
      case 'ADDED':
      case 'MODIFIED': {
        const o = this.transform(obj);
        const k = keyOf(o);
        const had = this.cache.has(k);
        this.cache.set(k, o);
        this.resourceVersion = o.metadata?.resourceVersion ?? this.resourceVersion;
        this.emit(had ? 'update' : 'add', o);
        return;
      }
      case 'DELETED': {
        const k = keyOf(obj);
        const o = this.cache.get(k) ?? this.transform(obj);
        this.cache.delete(k);
        this.resourceVersion = obj.metadata?.resourceVersion ?? this.resourceVersion;
        this.emit('delete', o);
        return;
      }
      case 'BOOKMARK':
        this.resourceVersion = obj.metadata?.resourceVersion ?? this.resourceVersion;
        return;
      case 'ERROR':
        // a metav1.Status; 410 Gone: the watch's version was compacted away
        if (obj.code === 410) return 'gone';
        {
          const h = this.handle;
          this.fail(this.run, new Error(`watch ${this.path}: ${typeof obj.message === 'string' ? obj.message : `error ${String(obj.code)}`}`));
          h?.stop();
        }
        return;
      default:
        return;
    }
  }
}

/** Every field but metadata.managedFields (the server's field ownership: often larger than the object, never read here). */
export function stripManagedFields<T extends KubeObject>(o: T): T {
  if (!o.metadata?.managedFields) return o;
  const { managedFields: _, ...metadata } = o.metadata;
  return { ...o, metadata };
}
