// A pure parser of /proc/<pid>/mountinfo (proc(5)):
//
//   36 35 98:0 /mnt1 /mnt/parent rw,noatime master:1 - ext3 /dev/root rw,errors=continue
//   (1)(2)(3)   (4)   (5)         (6)       (7)      (8) (9)   (10)      (11)
//
// (1) mount id, (2) parent id, (3) major:minor of st_dev, (4) root of the mount
// within the filesystem, (5) mount point, (6) per-mount options, (7) zero or
// more optional fields (`shared:N`, `master:N`, …) ended by (8) a lone `-`,
// (9) filesystem type, (10) source (`none` when there is none), (11) per-superblock
// options. Fields are separated by single spaces; the kernel escapes space, tab,
// newline and backslash inside a field as `\040`, `\011`, `\012`, `\134`.

interface MountEntry {
  mountId: number;
  parentId: number;
  /** `major:minor` of the mounted filesystem's device (`0:NN` for btrfs and virtual filesystems) */
  majmin: string;
  root: string;
  mountPoint: string;
  options: string;
  optional: string[];
  fsType: string;
  source: string;
  superOptions: string;
}

/** Undo the kernel's octal escapes (`\040` → space). Other text is kept as is. */
export function unescapeMountField(s: string): string {
  if (s.indexOf('\\') < 0) return s;
  return s.replace(/\\([0-3][0-7]{2})/g, (_whole, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

const MAJMIN = /^\d{1,10}:\d{1,10}$/;
const ID = /^\d{1,10}$/;

/** Parse one mountinfo line; null when it is not one. */
export function parseMountinfoLine(line: string): MountEntry | null {
  const f = line.split(' ');
  if (f.length < 10) return null;
  const sep = f.indexOf('-', 6);
  // after the separator: fs type, source, super options
  if (sep < 0 || f.length < sep + 4) return null;
  const [id, parent, majmin, root, mountPoint, options] = f as [string, string, string, string, string, string];
  if (!ID.test(id) || !ID.test(parent) || !MAJMIN.test(majmin)) return null;
  return {
    mountId: Number(id),
    parentId: Number(parent),
    majmin,
    root: unescapeMountField(root),
    mountPoint: unescapeMountField(mountPoint),
    options,
    optional: f.slice(6, sep),
    fsType: unescapeMountField(f[sep + 1]!),
    source: unescapeMountField(f[sep + 2]!),
    // super options never contain a space; anything past them is joined back
    superOptions: unescapeMountField(f.slice(sep + 3).join(' ')),
  };
}

/** Parse a whole mountinfo text; lines that do not parse are skipped. */
export function parseMountinfo(text: string): MountEntry[] {
  const out: MountEntry[] = [];
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const e = parseMountinfoLine(line);
    if (e) out.push(e);
  }
  return out;
}

/** Entries whose device is `major:minor`, in table order. */
export function findMountsByMajMin(entries: readonly MountEntry[], majmin: string): MountEntry[] {
  return entries.filter((e) => e.majmin === majmin);
}

/** Entries mounted from `source` (e.g. `/dev/sdb1`, `/dev/loop0`), in table order. */
export function findMountsBySource(entries: readonly MountEntry[], source: string): MountEntry[] {
  return entries.filter((e) => e.source === source);
}

/**
 * The mount that best represents a device: the first one that mounts the
 * filesystem's own root (`/`), else the first (a bind mount of a subdirectory).
 */
export function primaryMount(candidates: readonly MountEntry[]): MountEntry | undefined {
  return candidates.find((e) => e.root === '/') ?? candidates[0];
}

/** An index of a mount table by device and by source, for repeated lookups. */
export class MountTable {
  readonly entries: readonly MountEntry[];
  private readonly byMajMin = new Map<string, MountEntry[]>();
  private readonly bySource = new Map<string, MountEntry[]>();

  constructor(entries: readonly MountEntry[]) {
    this.entries = entries;
    for (const e of entries) {
      push(this.byMajMin, e.majmin, e);
      push(this.bySource, e.source, e);
    }
  }

  static parse(text: string): MountTable {
    return new MountTable(parseMountinfo(text));
  }

  withMajMin(majmin: string): readonly MountEntry[] {
    return this.byMajMin.get(majmin) ?? [];
  }

  withSource(source: string): readonly MountEntry[] {
    return this.bySource.get(source) ?? [];
  }
}

function push(m: Map<string, MountEntry[]>, k: string, e: MountEntry): void {
  const list = m.get(k);
  if (list) list.push(e);
  else m.set(k, [e]);
}
