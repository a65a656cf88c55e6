// What a reload changes: two configurations' sections (plugin sections,
// storage backends, [main] keys — whatever has a name and a value) compared
// by name. The agent restarts its collectors, builds a new storage manager
// and `peripety receive` joins a new group only when the parts they read
// differ; every one of those decisions asks this one function.

/** Named values in their configured order (names are unique: TOML sections, JSON object keys). */
export type Sections<T = unknown> = ReadonlyArray<readonly [name: string, value: T]>;

export interface SectionDiff {
  /** in both, the same value (in the order of `next`) */
  kept: string[];
  /** only in `next` */
  added: string[];
  /** only in `old` (in its order) */
  removed: string[];
  /** in both, another value */
  changed: string[];
  /** the names in both stand in another order (collectors start, backends load in configured order) */
  reordered: boolean;
}

/** Values are the same when their JSON is: key order counts, as in the file. */
export function sameJson(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

export function diffSections<T>(old: Sections<T>, next: Sections<T>, same: (a: T, b: T) => boolean = sameJson): SectionDiff {
  const before = new Map(old);
  const after = new Map(next);
  const d: SectionDiff = { kept: [], added: [], removed: [], changed: [], reordered: false };
  for (const [name, value] of next) {
    if (!before.has(name)) d.added.push(name);
    else if (same(before.get(name) as T, value)) d.kept.push(name);
    else d.changed.push(name);
  }
  for (const [name] of old) if (!after.has(name)) d.removed.push(name);
  const inBoth = (s: Sections<T>, other: Map<string, T>) => s.filter(([n]) => other.has(n)).map(([n]) => n);
  const a = inBoth(old, after);
  const b = inBoth(next, before);
  d.reordered = a.some((n, i) => n !== b[i]);
  return d;
}

/** Nothing added, removed, changed or moved. */
export function unchanged(d: SectionDiff): boolean {
  return d.added.length === 0 && d.removed.length === 0 && d.changed.length === 0 && !d.reordered;
}
