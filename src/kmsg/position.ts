// The saved kmsg read position: the last fully processed sequence number and
// the boot it belongs to (SEQ restarts at every boot). Written with
// write-to-temp + rename: a SIGKILL leaves the old or the new file, never a
// torn one. No fsync: a machine crash changes the boot id anyway, which makes
// the saved position moot. The file is private (0600) and never a link or
// device (src/fsutil/safe-files.ts).
import path from 'node:path';
import { z } from 'zod';
import { MAX_STATE_FILE_BYTES, PRIVATE_FILE_MODE, readRegularFile, tightenMode, writePrivateFileAtomic } from '../fsutil/safe-files.ts';

const Position = z.object({ boot_id: z.string().min(1).max(64), seq: z.number().int().min(-1) });
type Position = z.infer<typeof Position>;

export const POSITION_FILE = 'kmsg.position.json';

export function readPosition(stateDir: string): { position: Position | null; error?: string } {
  const file = path.join(stateDir, POSITION_FILE);
  let text: string;
  try {
    text = readRegularFile(file, 'kmsg position file', { maxBytes: MAX_STATE_FILE_BYTES, noFollow: true });
    tightenMode(file, PRIVATE_FILE_MODE);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { position: null };
    return { position: null, error: `cannot read ${file}: ${(err as Error).message}` };
  }
  try {
    const parsed = Position.safeParse(JSON.parse(text));
    if (parsed.success) return { position: parsed.data };
    return { position: null, error: `${file} is not a valid position: ${parsed.error.issues[0]?.message}` };
  } catch {
    return { position: null, error: `${file} is not JSON` };
  }
}

export function writePosition(stateDir: string, pos: Position): void {
  const file = path.join(stateDir, POSITION_FILE);
  writePrivateFileAtomic(file, JSON.stringify(pos) + '\n', 'kmsg position file');
}
