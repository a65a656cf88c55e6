// A ticket follows one raw record through the pipeline: every queue that
// holds something derived from the record retains it and releases it when
// done (written or dropped-and-counted). When the last holder releases, the
// record is fully processed and the collector may advance its saved position.
export interface Ticket {
  retain(): void;
  release(): void;
  /**
   * Release, reporting that this holder gave the record's event up although
   * it must not lose it (a storage backend that keeps events, disk full):
   * the saved read position then stays before the record, so the next start
   * reads it again while the kernel still holds it. Holders without it just
   * release.
   */
  lost?(): void;
}

export const NO_TICKET: Ticket = { retain() {}, release() {} };
