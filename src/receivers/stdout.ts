// The stdout receiver: one line per event, human-readable or JSON.
//
// A slow or absent reader must never stall anything else (issue 10 C14):
// - a pipe or socket is written without blocking: through a libuv stream
//   (net.Socket: the descriptor is non-blocking, epoll says when it takes
//   more), never fs.write, which parks a thread-pool thread in write(2) for
//   as long as the pipe is full; four such receivers took all four threads
//   and every file write of the storage backends queued behind them;
// - at most one batch per receiver waits in the stream: before the next one,
//   the receiver waits for the stream to drain, at most STALL_MS; then that
//   batch is dropped and counted, so memory stays bounded and the queue keeps
//   moving (what does not fit in the queue is dropped and counted as well);
// - every stdout receiver of the process shares one writer per descriptor
//   (two libuv handles on one descriptor would fight over its epoll entry);
// - a regular file, a terminal or /dev/null is written through one file
//   stream per descriptor (such writes finish; they do not wait for a reader).
//
// Acknowledged (docs/architecture.md "Acknowledgement"): written to the
// descriptor (a file, a terminal); for a pipe or socket, handed to its
// stream once the batch before it was written to the pipe, or dropped and
// counted.
import { createWriteStream, fstatSync } from 'node:fs';
import { Socket } from 'node:net';
import type { Writable } from 'node:stream';
import type { StorageEvent } from '../events/schema.ts';
import { formatJson, formatText } from './format.ts';
import { QueuedReceiver, type ReceiverDeps } from './queued.ts';
import { StdoutOptions } from './options.ts';


/** How long a batch waits for the reader to take the previous one before it is dropped. */
const STALL_MS = 2000;
const DROP_LOG_INTERVAL_MS = 10_000;

interface FdWriter {
  stream: Writable;
  /** written without blocking a thread (pipe, socket) */
  nonBlocking: boolean;
  /** the receivers' error loggers (one listener on the stream, however many receivers come and go) */
  onError: Set<(err: Error) => void>;
  /** receivers using it */
  users: number;
}

const writers = new Map<number, FdWriter>();

/** The one writer of descriptor `fd` in this process. */
function fdWriter(fd: number): FdWriter {
  const w = writers.get(fd);
  if (w !== undefined) {
    w.users++;
    return w;
  }
  let isStream = false;
  try {
    const st = fstatSync(fd);
    isStream = st.isFIFO() || st.isSocket();
  } catch {
    // not open: the file stream reports the error on the first write
  }
  let stream: Writable;
  if (isStream) {
    // fd 1 is process.stdout's too: reuse its handle when it is a stream (one libuv handle per descriptor)
    const s = fd === 1 && process.stdout instanceof Socket ? process.stdout : new Socket({ fd, readable: false, writable: true });
    // data nobody reads must not keep the process from exiting
    s.unref();
    stream = s;
  } else {
    stream = createWriteStream('', { fd, autoClose: false });
  }
  const made: FdWriter = { stream, nonBlocking: isStream, onError: new Set(), users: 1 };
  stream.on('error', (err) => {
    for (const f of made.onError) f(err);
  });
  writers.set(fd, made);
  return made;
}

/**
 * A receiver is done with descriptor `fd`'s writer. When the last one is, a
 * stream this module made for a descriptor other than 0-2 is destroyed: its
 * unwritten data (a reader that never came) is discarded, and a socket
 * stream closes the descriptor. The standard descriptors stay as they are
 * (a later configuration may write to them again; the process exit ends
 * any write still pending there).
 */
function releaseFdWriter(fd: number): void {
  const w = writers.get(fd);
  if (w === undefined || --w.users > 0) return;
  if (fd <= 2) return;
  writers.delete(fd);
  w.stream.destroy();
}

export class StdoutReceiver extends QueuedReceiver {
  private readonly writer: FdWriter;
  private readonly fd: number;
  private readonly format: (ev: StorageEvent) => string;
  private droppedSinceLog = 0;
  private lastDropLog = -Infinity;
  /** the last chunk handed to a non-blocking stream, until the stream wrote it */
  private previous: Promise<void> | null = null;

  /** `fd`: 1, or (tests) a descriptor the receivers take over: the last one's close closes a pipe or socket */
  constructor(name: string, opts: StdoutOptions, defaultQueue: number, deps: ReceiverDeps, fd = 1) {
    super(name, opts.queue_size ?? defaultQueue, deps);
    this.format = opts.format === 'json' ? formatJson : formatText;
    this.fd = fd;
    this.writer = fdWriter(fd);
    this.writer.onError.add(this.onError);
  }

  private readonly onError = (err: Error): void => {
    this.deps.log.error({ receiver: this.name, err: err.message }, 'stdout write failed');
  };

  protected override async shutdown(): Promise<void> {
    this.writer.onError.delete(this.onError);
    releaseFdWriter(this.fd);
  }

  protected async write(batch: StorageEvent[]): Promise<number> {
    let chunk = '';
    for (const ev of batch) chunk += this.format(ev) + '\n';
    const { stream, nonBlocking } = this.writer;
    if (!nonBlocking) {
      await new Promise<void>((resolve, reject) => {
        stream.write(chunk, (err) => (err ? reject(err) : resolve()));
      });
      return 0;
    }
    if (stream.destroyed) {
      // the reader went away (EPIPE): nothing can be written any more
      this.dropped(batch.length);
      return batch.length;
    }
    if (this.previous !== null && !(await settledWithin(this.previous, STALL_MS))) {
      this.dropped(batch.length);
      return batch.length;
    }
    // handed to the stream: written as the reader takes it; the next batch waits for that
    // (forgotten once written, so a reader that keeps up costs no stall timer per batch)
    const written: Promise<void> = new Promise<void>((resolve) => stream.write(chunk, () => {
      if (this.previous === written) this.previous = null;
      resolve();
    }));
    this.previous = written;
    return 0;
  }

  private dropped(n: number): void {
    this.droppedSinceLog += n;
    const now = performance.now();
    if (now - this.lastDropLog < DROP_LOG_INTERVAL_MS) return;
    this.lastDropLog = now;
    this.deps.log.warn({ receiver: this.name, events: this.droppedSinceLog, stall_ms: STALL_MS }, 'stdout: events dropped (nobody reads stdout fast enough)');
    this.droppedSinceLog = 0;
  }
}

/** Resolves true once `p` settled, false after `ms`. */
function settledWithin(p: Promise<void>, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    void p.then(() => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}
