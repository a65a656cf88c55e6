// SysfsResolver: the DeviceResolver of the agent and `prpt info`, reading
// sysfs, /dev and the host mount table under configurable roots (docs/events.md §4),
// with a bounded, time-limited cache.
//
// The lookups are synchronous (see sysfs.ts): sysfs and devtmpfs are in-memory
// filesystems, a read takes microseconds and cannot hang on a failing disk, and
// a resolved device is cached, so the event path pays for sysfs once per device
// per TTL. Input names are untrusted (they come from kernel text anyone with
// /dev/kmsg write access can forge) and are checked before any path is built.
import path from 'node:path';
import type { DeviceRef } from '../contracts/parser.ts';
import type { DeviceResolver, FsIdentity, Identity, ResolverRoots, StackInfo } from '../contracts/device.ts';
import { TtlCache } from '../contracts/ttl-cache.ts';
import { isDmName, isHctl, isKernelName, isMajMin } from './ids.ts';
import { primaryMount, type MountTable } from './mountinfo.ts';
import { fsUuidOf, preferredPathOf, SysfsTree, type DeviceInfo } from './sysfs.ts';

interface ResolverOptions {
  /** how long a resolved device is trusted (default 30 s) */
  ttlMs?: number;
  /** how long "no such device" is remembered (default 1 s, at most ttlMs) */
  negativeTtlMs?: number;
  /** how long the mount table and the /dev/disk/by-* link index are reused (default 5 s) */
  tableTtlMs?: number;
  /** cache bound: at most this many lookups are remembered (default 4096) */
  maxEntries?: number;
  /** clock in ms (tests inject one) */
  now?: () => number;
}

/** A cached lookup: the identity (null: no such device) and the device names (kernel and dm) it was learned through. */
interface Lookup {
  id: Identity | null;
  deps: readonly string[];
}

/** the one negative answer (never changed) */
const NEGATIVE: Lookup = Object.freeze({ id: null, deps: [] });

interface Table<T> {
  value: T;
  expires: number;
}

/** Devices visited at most when describe() walks a stack. */
const MAX_STACK = 256;

function copy(id: Identity): Identity {
  return { ...id };
}

export class SysfsResolver implements DeviceResolver {
  readonly roots: ResolverRoots;
  private readonly tree: SysfsTree;
  private readonly ttlMs: number;
  private readonly negativeTtlMs: number;
  private readonly tableTtlMs: number;
  private readonly now: () => number;
  private readonly cache: TtlCache<Lookup>;
  private mounts: Table<MountTable> | null = null;
  /** the identities (cached, frozen, handed out as they are) of device-mapper devices: sysfs has their dm/ */
  private readonly dmIds = new WeakSet<Identity>();
  private links: Table<Map<string, string[]>> | null = null;

  constructor(roots: ResolverRoots, opts: ResolverOptions = {}) {
    this.roots = roots;
    this.tree = new SysfsTree(roots);
    this.ttlMs = Math.max(0, opts.ttlMs ?? 30_000);
    this.negativeTtlMs = Math.min(this.ttlMs, Math.max(0, opts.negativeTtlMs ?? 1_000));
    this.tableTtlMs = Math.max(0, opts.tableTtlMs ?? 5_000);
    this.now = opts.now ?? Date.now;
    this.cache = new TtlCache({ ttlMs: this.ttlMs, max: Math.max(1, Math.floor(opts.maxEntries ?? 4096)), now: this.now, refreshOnHit: true });
  }

  /** Number of cached lookups (for tests and metrics). */
  get cacheSize(): number {
    return this.cache.size;
  }

  resolve(ref: DeviceRef): Readonly<Identity> | null {
    try {
      if (ref === null || typeof ref !== 'object') return null;
      // a device of another kind than the message says is not the one it means (a dm message's 253:0 that is zram0 here)
      const dm = ref.kind === 'dm';
      let id: Identity | null = null;
      if (ref.name !== undefined) id = this.ofKind(this.byName(ref.name), dm);
      if (id === null && ref.hctl !== undefined) id = this.ofKind(this.byHctl(ref.hctl), dm);
      if (id === null && ref.majmin !== undefined) id = this.ofKind(this.byMajMin(ref.majmin), dm);
      if (id === null && ref.holderOf !== undefined) id = this.ofKind(this.byHolderOf(ref.holderOf), dm);
      return id;
    } catch {
      return null;
    }
  }

  filesystem(name: string, uuidHint?: string): FsIdentity {
    try {
      const out: FsIdentity = {};
      if (typeof uuidHint === 'string' && uuidHint !== '') out.uuid = uuidHint;
      if (!isKernelName(name)) return out;
      const id = this.byName(name);
      if (out.uuid === undefined) {
        const uuid = fsUuidOf(this.linkIndex().get(name));
        if (uuid !== undefined) out.uuid = uuid;
      }
      const table = this.mountTable();
      let candidates = id?.majmin ? table.withMajMin(id.majmin) : [];
      if (candidates.length === 0) candidates = table.withSource(`/dev/${name}`);
      if (candidates.length === 0 && id?.dmName) candidates = table.withSource(`/dev/mapper/${id.dmName}`);
      const m = primaryMount(candidates);
      if (m) {
        out.mountPoint = m.mountPoint;
        out.fsType = m.fsType;
      }
      return out;
    } catch {
      return {};
    }
  }

  describe(nameOrPath: string): StackInfo | null {
    try {
      const name = this.nameOf(nameOrPath);
      if (name === null) return null;
      const identity = this.byName(name);
      if (identity === null) return null;
      return {
        identity: copy(identity),
        below: this.walk(name, 'slaves'),
        above: this.walk(name, 'holders'),
        fs: this.filesystem(name),
        links: [...(this.linkIndex().get(name) ?? [])],
      };
    } catch {
      return null;
    }
  }

  invalidate(name?: string): void {
    this.links = null;
    if (name === undefined) {
      this.cache.clear();
      this.mounts = null;
      return;
    }
    // what was learned through `name`, and every negative answer: a device
    // (re)appearing can make any "no such device" wrong (`8:16`, `sdz`)
    if (typeof name === 'string') this.cache.deleteWhere((e) => e.id === null || e.deps.includes(name));
  }

  invalidateMounts(): void {
    this.mounts = null;
  }

  // -------------------------------------------------------------------------
  // cached lookups

  /** `id` when it may be taken: any device, or (`dm`) a device-mapper one. */
  private ofKind(id: Identity | null, dm: boolean): Identity | null {
    return id === null || !dm || this.dmIds.has(id) ? id : null;
  }

  // Each lookup asks the cache before it builds the closure that would fill
  // it: a hit (nearly every event) allocates nothing. Only checked names are
  // ever stored, so a hit needs no check of its own.

  private cached(key: string, compute: () => { id: Identity; deps: string[] } | null): Identity | null {
    const hit = this.cache.get(key);
    if (hit !== undefined) return hit.id;
    return this.remember(key, compute());
  }

  private remember(key: string, r: { id: Identity; deps: string[] } | null): Identity | null {
    if (r === null) {
      if (this.negativeTtlMs > 0) this.cache.set(key, NEGATIVE, this.negativeTtlMs);
      return null;
    }
    // frozen: resolve() hands the cached object out without copying it
    Object.freeze(r.id);
    if (this.ttlMs > 0) this.cache.set(key, r);
    return r.id;
  }

  private byName(name: string): Identity | null {
    const key = `n:${name}`;
    const hit = this.cache.get(key);
    if (hit !== undefined) return hit.id;
    if (!isKernelName(name)) return null;
    return this.remember(key, this.fromDir(this.tree.dirOfName(name)));
  }

  private byMajMin(majmin: string): Identity | null {
    const key = `m:${majmin}`;
    const hit = this.cache.get(key);
    if (hit !== undefined) return hit.id;
    if (!isMajMin(majmin)) return null;
    return this.remember(key, this.fromDir(this.tree.dirOfMajMin(majmin)));
  }

  private byHctl(hctl: string): Identity | null {
    const key = `h:${hctl}`;
    const hit = this.cache.get(key);
    if (hit !== undefined) return hit.id;
    if (!isHctl(hctl)) return null;
    const name = this.tree.nameOfHctl(hctl);
    return this.remember(key, name === null ? null : this.fromDir(this.tree.dirOfName(name)));
  }

  /** The device-mapper map holding the path device `majmin` (/sys/dev/block/M:m/holders/dm-*). */
  private byHolderOf(majmin: string): Identity | null {
    if (!isMajMin(majmin)) return null;
    return this.cached(`H:${majmin}`, () => {
      const pathDir = this.tree.dirOfMajMin(majmin);
      if (pathDir === null) return null;
      const holders = this.tree.stacked(pathDir, 'holders');
      // the map is a dm device; prefer one if anything else holds the path too
      const pick = holders.find((h) => h.startsWith('dm-')) ?? holders[0];
      if (pick === undefined) return null;
      const r = this.fromDir(this.tree.dirOfName(pick));
      return r === null ? null : { id: r.id, deps: [...r.deps, path.basename(pathDir)] };
    });
  }

  private fromDir(dir: string | null): { id: Identity; deps: string[] } | null {
    if (dir === null) return null;
    const info = this.tree.info(dir);
    if (info === null) return null;
    return { id: this.identityOf(info), deps: depsOf(info) };
  }

  private identityOf(info: DeviceInfo): Identity {
    const id: Identity = { name: info.name, wwid: info.wwid };
    if (info.majmin) id.majmin = info.majmin;
    if (info.dmName) id.dmName = info.dmName;
    const preferred = preferredPathOf(this.linkIndex().get(info.name));
    if (preferred !== undefined) id.preferredPath = preferred;
    if (info.kind === 'dm') this.dmIds.add(id);
    return id;
  }

  private linkIndex(): Map<string, string[]> {
    const now = this.now();
    if (this.links === null || this.links.expires <= now) this.links = { value: this.tree.diskLinks(), expires: now + this.tableTtlMs };
    return this.links.value;
  }

  private mountTable(): MountTable {
    const now = this.now();
    if (this.mounts === null || this.mounts.expires <= now) this.mounts = { value: this.tree.mountTable(), expires: now + this.tableTtlMs };
    return this.mounts.value;
  }

  // -------------------------------------------------------------------------
  // describe()

  /** The kernel name for `sdb`, `/dev/sdb`, `/dev/disk/by-id/…`, `8:16`, `2:0:0:0`, `dm-0`, `mpatha`, `/dev/mapper/mpatha`. */
  private nameOf(input: string): string | null {
    if (typeof input !== 'string') return null;
    const s = input.trim();
    if (s === '' || s.length > 4096 || s.includes('\0')) return null;
    if (isMajMin(s)) {
      const dir = this.tree.dirOfMajMin(s);
      return dir === null ? null : path.basename(dir);
    }
    if (isHctl(s)) return this.tree.nameOfHctl(s);
    if (s.startsWith('/')) {
      const norm = path.posix.normalize(s);
      const devRoot = path.resolve(this.roots.dev);
      let rel: string | null = null;
      if (norm.startsWith('/dev/')) rel = norm.slice(5);
      else if (norm.startsWith(devRoot + '/')) rel = norm.slice(devRoot.length + 1);
      if (rel === null || rel === '' || rel.split('/').some((seg) => seg === '..' || seg === '.')) return null;
      if (isKernelName(rel) && this.tree.dirOfName(rel) !== null) return rel;
      const viaLink = this.tree.followDevLink(path.join(devRoot, rel));
      if (viaLink !== null && this.tree.dirOfName(viaLink) !== null) return viaLink;
      if (rel.startsWith('mapper/')) return this.tree.nameOfDmName(rel.slice(7));
      return null;
    }
    if (isKernelName(s) && this.tree.dirOfName(s) !== null) return s;
    return isDmName(s) ? this.tree.nameOfDmName(s) : null;
  }

  /** Devices below or above `name`, breadth first (nearest first), each once. */
  private walk(name: string, which: 'holders' | 'slaves'): Identity[] {
    const out: Identity[] = [];
    const seen = new Set<string>([name]);
    const queue = [name];
    while (queue.length > 0 && seen.size < MAX_STACK) {
      const cur = queue.shift()!;
      const dir = this.tree.dirOfName(cur);
      if (dir === null) continue;
      for (const next of this.tree.stacked(dir, which)) {
        if (seen.has(next)) continue;
        seen.add(next);
        const id = this.byName(next);
        if (id === null) continue;
        out.push(copy(id));
        queue.push(next);
      }
    }
    return out;
  }
}

function depsOf(info: DeviceInfo): string[] {
  const deps = [info.name];
  if (info.parent) deps.push(info.parent);
  if (info.dmName) deps.push(info.dmName);
  return deps;
}
