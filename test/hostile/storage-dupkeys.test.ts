// Issue 10 item 15: a storage configuration that names a backend twice is
// refused, naming the duplicate. JSON.parse keeps only the last of two equal
// keys, so the raw text is scanned. (On f38c4a7 the last one won silently:
// the agent ran one backend where the file listed two.)
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { parseStorageConfig } from '../../src/storage/config.ts';
import { PERIPETY, quietConfig, spawnCli } from '../helpers/cli-process.ts';

const work = mkdtempSync(path.join(os.tmpdir(), 'hostile-dupkeys-'));
after(() => rmSync(work, { recursive: true, force: true }));

const wrap = (plugins: string) => `{"root": {"elos": {"EventLogging": {"Plugins": {${plugins}}}}}}`;
const DB = (p: string) => `{"File": "sqlite", "Filter": ["1 1 EQ"], "Config": {"Path": "${p}"}}`;

describe('hostile: duplicate keys in the storage configuration', () => {
  it('a backend name used twice is refused, naming it', () => {
    const r = parseStorageConfig(wrap(`"db": ${DB('a.db')}, "other": ${DB('o.db')}, "db": ${DB('b.db')}`));
    assert.equal(r.ok, false, 'must be refused');
    assert.match(!r.ok ? r.error : '', /backend name "db" is used twice in root\.elos\.EventLogging\.Plugins/);
  });

  it('also when the second spelling uses an escape', () => {
    const r = parseStorageConfig(wrap(`"db": ${DB('a.db')}, "d\\u0062": ${DB('b.db')}`));
    assert.equal(r.ok, false);
    assert.match(!r.ok ? r.error : '', /"db" is used twice/);
  });

  it('a duplicate key inside a backend is refused with its path', () => {
    const r = parseStorageConfig(wrap(`"db": {"File": "sqlite", "Filter": ["1 1 EQ"], "Config": {"Path": "a.db", "Path": "b.db"}}`));
    assert.equal(r.ok, false);
    assert.match(!r.ok ? r.error : '', /duplicate key "Path" in root\.elos\.EventLogging\.Plugins\.db\.Config/);
  });

  it('equal keys in different objects, strings that look like keys, arrays: accepted', () => {
    const r = parseStorageConfig(wrap(`"a": ${DB('a.db')}, "b": {"File": "jsonl", "Filter": ["\\"a\\", \\"a\\": 1", ".event.x {", "]"], "Config": {}}`));
    assert.equal(r.ok, true, !r.ok ? r.error : '');
  });

  it('the real agent refuses to start with such a file, naming the backend', async (t) => {
    const cfg = path.join(work, 'agent.toml');
    const storage = path.join(work, 'storage.json');
    writeFileSync(cfg, quietConfig());
    writeFileSync(storage, wrap(`"db": ${DB('a.db')}, "db": ${DB('b.db')}`));
    const out = await spawnCli(PERIPETY, ['agent', '--config', cfg, '--storage-config', storage, '--state-dir', path.join(work, 'state')]).finish(15_000);
    t.diagnostic(`agent: exit ${out.code}: ${out.stderr.trim().split('\n').at(-1)?.slice(0, 300)}`);
    assert.notEqual(out.code, null, 'must exit');
    assert.notEqual(out.code, 0);
    assert.match(out.stderr, /backend name "db" is used twice/);
  });
});
