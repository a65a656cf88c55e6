// JSON.parse keeps the last of two equal keys in an object and says nothing,
// so a storage configuration that names a backend twice would silently run
// only the second. This scans the raw text for duplicate keys. It runs after
// JSON.parse accepted the text, so it only has to follow valid JSON: strings
// (with escapes), objects, arrays and commas; everything else is skipped.

interface DuplicateKey {
  /** the key, decoded */
  key: string;
  /** where the object is: `root.elos.EventLogging.Plugins`, `a.b[2]`; '' for the top level */
  path: string;
}

interface ObjFrame {
  kind: 'object';
  path: string;
  keys: Set<string>;
  key: string | null;
  expectKey: boolean;
}

interface ArrFrame {
  kind: 'array';
  path: string;
  index: number;
}

type Frame = ObjFrame | ArrFrame;

function childPath(f: Frame | undefined): string {
  if (f === undefined) return '';
  if (f.kind === 'array') return `${f.path}[${f.index}]`;
  const k = f.key ?? '';
  const seg = /^[A-Za-z_$][\w$-]*$/.test(k) ? k : JSON.stringify(k);
  return f.path === '' ? seg : `${f.path}.${seg}`;
}

/** The first duplicate key in valid JSON text, or null. Linear in the text's length. */
export function findDuplicateKey(text: string): DuplicateKey | null {
  const stack: Frame[] = [];
  const n = text.length;
  let i = 0;
  while (i < n) {
    const c = text.charCodeAt(i);
    if (c === 0x7b /* { */) {
      stack.push({ kind: 'object', path: childPath(stack.at(-1)), keys: new Set(), key: null, expectKey: true });
      i++;
    } else if (c === 0x5b /* [ */) {
      stack.push({ kind: 'array', path: childPath(stack.at(-1)), index: 0 });
      i++;
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
      stack.pop();
      i++;
    } else if (c === 0x22 /* " */) {
      let j = i + 1;
      while (j < n) {
        const d = text.charCodeAt(j);
        if (d === 0x5c /* \ */) j += 2;
        else if (d === 0x22) break;
        else j++;
      }
      const top = stack.at(-1);
      if (top?.kind === 'object' && top.expectKey) {
        const key = JSON.parse(text.slice(i, j + 1)) as string;
        if (top.keys.has(key)) return { key, path: top.path };
        top.keys.add(key);
        top.key = key;
        top.expectKey = false;
      }
      i = j + 1;
    } else if (c === 0x2c /* , */) {
      const top = stack.at(-1);
      if (top?.kind === 'object') top.expectKey = true;
      else if (top?.kind === 'array') top.index++;
      i++;
    } else {
      i++;
    }
  }
  return null;
}
