// A ticket follows one raw record through the pipeline: every queue that
// holds something derived from the record retains it and releases it when
// done (written or dropped-and-counted). When the last holder releases, the
// record is fully processed and the collector may advance its saved position.
export interface Ticket {
  retain(): void;
  release(): void;
}

export const NO_TICKET: Ticket = { retain() {}, release() {} };
