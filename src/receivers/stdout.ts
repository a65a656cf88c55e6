// The stdout receiver: one line per event, human-readable or JSON.
// Writes go through a file stream on fd 1 (libuv's thread pool), not the
// synchronous process.stdout, so a slow reader of a pipe never stalls the
// event loop: the queue fills and drops are counted instead.
import { createWriteStream, type WriteStream } from 'node:fs';
import { z } from 'zod';
import type { StorageEvent } from '../events/schema.ts';
import { formatJson, formatText } from './format.ts';
import { QueuedReceiver, type ReceiverDeps } from './queued.ts';

export const StdoutOptions = z.strictObject({
  format: z.enum(['text', 'json']).default('text'),
  queue_size: z.number().int().min(1).max(10_000_000).optional(),
});
export type StdoutOptions = z.infer<typeof StdoutOptions>;

export class StdoutReceiver extends QueuedReceiver {
  private readonly stream: WriteStream;
  private readonly format: (ev: StorageEvent) => string;

  constructor(name: string, opts: StdoutOptions, defaultQueue: number, deps: ReceiverDeps, fd = 1) {
    super(name, opts.queue_size ?? defaultQueue, deps);
    this.format = opts.format === 'json' ? formatJson : formatText;
    this.stream = createWriteStream('', { fd, autoClose: false });
    this.stream.on('error', (err) => deps.log.error({ receiver: name, err: err.message }, 'stdout write failed'));
  }

  protected write(batch: StorageEvent[]): Promise<void> {
    let chunk = '';
    for (const ev of batch) chunk += this.format(ev) + '\n';
    return new Promise((resolve, reject) => {
      this.stream.write(chunk, (err) => (err ? reject(err) : resolve()));
    });
  }
}
