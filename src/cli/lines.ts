// Bounded line splitting for streamed input (`prpt parse`): pure, no I/O.

/**
 * Newline-separated lines of a byte stream, each at most `max` bytes: a
 * longer line is dropped as it streams (never buffered whole) and reported
 * once with its length so far.
 */
export class LineSplitter {
  private parts: Buffer[] = [];
  private len = 0;
  /** inside an over-long line: drop bytes until its newline */
  private dropping = false;
  private readonly max: number;
  private readonly onLine: (line: Buffer) => void;
  private readonly onTooLong: (bytes: number) => void;

  constructor(max: number, onLine: (line: Buffer) => void, onTooLong: (bytes: number) => void) {
    this.max = max;
    this.onLine = onLine;
    this.onTooLong = onTooLong;
  }

  push(chunk: Buffer): void {
    let start = 0;
    while (start < chunk.length) {
      const nl = chunk.indexOf(0x0a, start);
      const end = nl === -1 ? chunk.length : nl;
      if (!this.dropping) {
        if (this.len + end - start > this.max) {
          this.onTooLong(this.len + end - start);
          this.parts = [];
          this.len = 0;
          this.dropping = true;
        } else if (end > start) {
          this.parts.push(chunk.subarray(start, end));
          this.len += end - start;
        }
      }
      if (nl === -1) break;
      if (!this.dropping) this.emit();
      this.dropping = false;
      start = nl + 1;
    }
    // keep a private copy of a partial line, so the (large) chunk it came from can be freed
    if (this.parts.length > 0) this.parts = [Buffer.concat(this.parts)];
  }

  end(): void {
    if (!this.dropping && this.len > 0) this.emit();
    this.parts = [];
    this.len = 0;
    this.dropping = false;
  }

  private emit(): void {
    const line = this.parts.length === 1 ? this.parts[0]! : Buffer.concat(this.parts);
    this.parts = [];
    this.len = 0;
    this.onLine(line);
  }
}
