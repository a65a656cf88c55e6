// Table-driven parser coverage: every line in test/fixtures/lines/*.jsonl is
// classified and parsed, and the result compared with its expectation.
//
// Fixture line format (one JSON object per line):
//   {"line": "<a /dev/kmsg record (\n-separated dictionary allowed) or dmesg text>",
//    "expect": null                                   // no event, no context
//            | {"context": "<hold key>"}              // a context line
//            | {"event_type": "BLK_IO_ERROR",         // a finding
//               "system": "block",                    // optional: the classification
//               "device": {"printed": "sdb", "name": "sdb"} | null,   // optional: subset of DeviceRef
//               "related": {"path": {"majmin": "8:16"}},              // optional: subset
//               "ext": {"op": "READ"},                // optional: subset of extentions
//               "severity": "error",                  // optional: the raised severity
//               "hold": "<key>"},                     // optional
//    "source": "where the line comes from (kernel version, driver)"}
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { parseKernelRecord } from '../../../src/parsers/index.ts';
import { isContext } from '../../../src/contracts/parser.ts';
import { fixtureRecord } from '../../helpers/parser-fixtures.ts';

const dir = path.resolve(import.meta.dirname, '../../fixtures/lines');

interface Expect {
  event_type?: string;
  system?: string;
  device?: Record<string, string> | null;
  related?: Record<string, Record<string, string>>;
  ext?: Record<string, string>;
  severity?: string;
  hold?: string;
  context?: string;
}

for (const file of readdirSync(dir).filter((f) => f.endsWith('.jsonl')).sort()) {
  describe(`fixtures/lines/${file}`, () => {
    const rows = readFileSync(path.join(dir, file), 'utf8').split('\n').filter((l) => l.trim() !== '');
    rows.forEach((row, i) => {
      const { line, expect } = JSON.parse(row) as { line: string; expect: Expect | null };
      it(`#${i + 1} ${line.slice(0, 90)}`, () => {
        const { system, result } = parseKernelRecord(fixtureRecord(line));
        if (expect === null) {
          assert.equal(result, null, `expected no event, got ${JSON.stringify(result)}`);
          return;
        }
        assert.ok(result !== null, `expected ${JSON.stringify(expect)}, got nothing (system ${system})`);
        if (expect.context !== undefined) {
          assert.ok(isContext(result), `expected a context line, got ${JSON.stringify(result)}`);
          assert.equal(result.context, expect.context);
          return;
        }
        assert.ok(!isContext(result), `expected a finding, got context ${JSON.stringify(result)}`);
        assert.equal(result.type, expect.event_type);
        if (expect.system !== undefined) assert.equal(system, expect.system);
        if (expect.device === null) assert.equal(result.device, null);
        else if (expect.device !== undefined) {
          assert.ok(result.device, 'expected a device');
          for (const [k, v] of Object.entries(expect.device)) {
            assert.equal((result.device as unknown as Record<string, unknown>)[k], v, `device.${k}`);
          }
        }
        for (const [key, want] of Object.entries(expect.related ?? {})) {
          const got: unknown = result.related?.[key];
          assert.ok(got, `expected related device ${key}`);
          for (const [k, v] of Object.entries(want)) assert.equal((got as unknown as Record<string, unknown>)[k], v, `related.${key}.${k}`);
        }
        for (const [k, v] of Object.entries(expect.ext ?? {})) assert.equal(result.ext[k], v, `ext.${k}`);
        if (expect.severity !== undefined) assert.equal(result.severity, expect.severity);
        if (expect.hold !== undefined) assert.equal(result.hold, expect.hold);
      });
    });
  });
}
