// The webhook receiver: events POSTed as JSON batches to an HTTP(S) URL,
// in peripety's own shape or as Alertmanager alerts (webhook-format.ts).
//
// Delivery is at-least-once: a batch is retried (exponential backoff with
// jitter, Retry-After honoured) until the server answers 2xx or the retries
// run out; then it is dropped and counted. A 2xx ends the batch: it is never
// sent again. Only a lost answer (timeout, reset after the server got the
// body) can make a server see a batch twice, and for that every request
// carries an Idempotency-Key and every event its event_id.
//
// The QueuedReceiver hands over one batch at a time: while a batch waits
// for a retry the queue fills, and what does not fit is dropped and counted.
// Memory stays bounded by queue_size plus one batch.
import { accessSync, constants as fsConstants } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import type { StorageEvent } from '../events/schema.ts';
import { cancellableSleep, QueuedReceiver, ReceiverClosedError, type ReceiverDeps } from './queued.ts';
import { receiverMetrics, type ReceiverMetrics, type WebhookResult } from './receiver-metrics.ts';
import { backoffDelay, classifyStatus, idempotencyKey, parseRetryAfter, payload, WEBHOOK_FORMATS } from './webhook-format.ts';

const MAX_HEADERS = 32;
const MAX_HEADER_VALUE = 4096;
const MAX_HEADERS_BYTES = 16 * 1024;
/** RFC 9110 token characters: what a header name may be made of. */
const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,128}$/;
/**
 * Headers a configuration may not set: framing and routing belong to the
 * HTTP client (a wrong Content-Length or Host breaks or misdirects the
 * request), and the receiver sets Idempotency-Key itself.
 */
export const FORBIDDEN_HEADERS = new Set([
  'content-length', 'host', 'transfer-encoding', 'connection', 'keep-alive', 'upgrade', 'te', 'trailer', 'expect', 'proxy-connection', 'idempotency-key',
]);

const httpUrl = z.string().max(2048).superRefine((s, ctx) => {
  let u: URL;
  try {
    u = new URL(s);
  } catch {
    ctx.addIssue({ code: 'custom', message: 'must be an absolute http:// or https:// URL' });
    return;
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') ctx.addIssue({ code: 'custom', message: `must be http:// or https:// (got ${u.protocol})` });
  // credentials in a URL end up in logs and proxies: bearer_token(_file) or headers instead
  if (u.username || u.password) ctx.addIssue({ code: 'custom', message: 'must not contain user:password@ (use bearer_token_file or headers)' });
});

const headers = z.record(z.string(), z.string()).superRefine((h, ctx) => {
  const entries = Object.entries(h);
  if (entries.length > MAX_HEADERS) ctx.addIssue({ code: 'custom', message: `at most ${MAX_HEADERS} headers` });
  let bytes = 0;
  for (const [name, value] of entries) {
    bytes += name.length + Buffer.byteLength(value) + 4;
    if (!HEADER_NAME.test(name)) ctx.addIssue({ code: 'custom', path: [name], message: 'is not a valid header name' });
    else if (FORBIDDEN_HEADERS.has(name.toLowerCase())) ctx.addIssue({ code: 'custom', path: [name], message: 'may not be set (the HTTP client or the receiver sets it)' });
    // the value is never quoted back: it may be a secret
    if (/[\r\n\0]/.test(value)) ctx.addIssue({ code: 'custom', path: [name], message: 'value must not contain CR, LF or NUL' });
    if (Buffer.byteLength(value) > MAX_HEADER_VALUE) ctx.addIssue({ code: 'custom', path: [name], message: `value longer than ${MAX_HEADER_VALUE} bytes` });
  }
  if (bytes > MAX_HEADERS_BYTES) ctx.addIssue({ code: 'custom', message: `headers larger than ${MAX_HEADERS_BYTES} bytes in all` });
});

export const WebhookOptions = z.strictObject({
  /** where batches are POSTed (for Alertmanager: http://alertmanager:9093/api/v2/alerts) */
  url: httpUrl,
  format: z.enum(WEBHOOK_FORMATS).default('events'),
  /** most events in one request */
  batch_size: z.number().int().min(1).max(10_000).default(100),
  /** requests that are not full start at least this long after the previous one (events gather meanwhile); 0: no wait */
  batch_wait_ms: z.number().int().min(0).max(60_000).default(1000),
  /** per request, until the response headers arrive */
  timeout_ms: z.number().int().min(100).max(300_000).default(10_000),
  /** retries of a failed batch before it is dropped (0: one attempt only) */
  max_retries: z.number().int().min(0).max(1000).default(8),
  initial_backoff_ms: z.number().int().min(1).max(600_000).default(500),
  max_backoff_ms: z.number().int().min(1).max(3_600_000).default(30_000),
  queue_size: z.number().int().min(1).max(10_000_000).optional(),
  /** sent as `Authorization: Bearer …`; prefer bearer_token_file (a configuration is not a secret store) */
  bearer_token: z.string().min(1).max(16_384).regex(/^[\x21-\x7e]+$/, 'must be printable ASCII without spaces').optional(),
  /** a file holding the token, read again for every request (rotated tokens, Kubernetes Secrets) */
  bearer_token_file: z.string().min(1).max(4096).refine((s) => s.startsWith('/'), { message: 'must be an absolute path' }).optional(),
  headers: headers.default({}),
  /** alertmanager format: generatorURL of every alert (a dashboard, a runbook) */
  generator_url: httpUrl.optional(),
}).superRefine((o, ctx) => {
  if (o.bearer_token !== undefined && o.bearer_token_file !== undefined) {
    ctx.addIssue({ code: 'custom', path: ['bearer_token_file'], message: 'give bearer_token or bearer_token_file, not both' });
  }
  if ((o.bearer_token !== undefined || o.bearer_token_file !== undefined) && Object.keys(o.headers).some((h) => h.toLowerCase() === 'authorization')) {
    ctx.addIssue({ code: 'custom', path: ['headers', 'Authorization'], message: 'conflicts with bearer_token/bearer_token_file' });
  }
  if (o.max_backoff_ms < o.initial_backoff_ms) ctx.addIssue({ code: 'custom', path: ['max_backoff_ms'], message: 'must be at least initial_backoff_ms' });
  if (o.generator_url !== undefined && o.format !== 'alertmanager') ctx.addIssue({ code: 'custom', path: ['generator_url'], message: 'only with format = "alertmanager"' });
});
export type WebhookOptions = z.infer<typeof WebhookOptions>;

/** The URL as logs may show it: no query (tokens hide there), no fragment, no credentials. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.origin}${u.pathname}${u.search ? '?…' : ''}`;
  } catch {
    return '(invalid URL)';
  }
}

interface Attempt {
  result: WebhookResult;
  status?: number;
  retryAfterMs: number | null;
  detail: string;
}

export class WebhookReceiver extends QueuedReceiver {
  private readonly opts: WebhookOptions;
  private readonly m: ReceiverMetrics;
  private readonly target: string;
  private readonly abort = new AbortController();
  private readonly random: () => number;
  private draining = false;
  private lastRequestAt = Number.NEGATIVE_INFINITY;
  private cancelSleep: (() => void) | null = null;
  /** ends a batch's lingering early (close: drain without waiting) */
  private wakeLinger: (() => void) | null = null;

  constructor(name: string, opts: WebhookOptions, defaultQueue: number, deps: ReceiverDeps, random: () => number = Math.random) {
    super(name, opts.queue_size ?? defaultQueue, deps, opts.batch_size);
    this.opts = opts;
    this.m = receiverMetrics(deps.metrics.registry);
    this.target = redactUrl(opts.url);
    this.random = random;
  }

  protected async write(batch: StorageEvent[]): Promise<void> {
    // a partial batch right after a request waits for the rest of the window
    if (batch.length < this.opts.batch_size) await this.linger();
    const body = payload(this.opts.format, batch, this.opts.generator_url);
    const key = idempotencyKey(batch);
    for (let retry = 0; ; retry++) {
      if (retry > 0) this.m.retries.labels(this.name).inc();
      const a = await this.attempt(body, key);
      this.m.webhookRequests.labels(this.name, a.result).inc();
      // a 2xx ends the batch: whatever happens next, it is never sent again
      if (a.result === 'ok') {
        // events already waiting: let more join them before the next request
        // (with none waiting the pump goes idle and nothing is held up)
        if (this.depth > 0) await this.linger();
        return;
      }
      this.m.errors.labels(this.name).inc();
      if (a.result === 'rejected') {
        this.m.rejected.labels(this.name).inc(batch.length);
        throw new Error(`webhook ${this.target}: ${a.detail}: rejected, not retried`);
      }
      if (retry >= this.opts.max_retries) {
        throw new Error(`webhook ${this.target}: ${a.detail}: giving up after ${retry + 1} attempt(s)`);
      }
      const delay = backoffDelay(retry + 1, { initialMs: this.opts.initial_backoff_ms, maxMs: this.opts.max_backoff_ms }, a.retryAfterMs, this.random);
      this.deps.log.warn({ receiver: this.name, url: this.target, err: a.detail, events: batch.length, retry: retry + 1, delay_ms: delay }, 'webhook request failed; retrying');
      await this.sleep(delay);
    }
  }

  /**
   * batch_wait_ms bounds the rate of requests that are not full: a request
   * starts no sooner than batch_wait_ms after the previous one, unless a full
   * batch is waiting (or close() drains). Events arriving meanwhile gather in
   * the queue and leave together. After a quiet spell the first event goes
   * out at once. A batch whose successor is already waiting is counted as
   * sent when this wait ends.
   */
  private async linger(): Promise<void> {
    const wait = this.lastRequestAt + this.opts.batch_wait_ms - performance.now();
    if (wait <= 0 || this.draining || this.depth >= this.opts.batch_size) return;
    await new Promise<void>((resolve) => {
      const wake = (): void => {
        clearTimeout(timer);
        this.wakeLinger = null;
        resolve();
      };
      const timer = setTimeout(wake, wait);
      this.wakeLinger = wake;
    });
  }

  override deliver(ev: StorageEvent, done: () => void): boolean {
    const ok = super.deliver(ev, done);
    if (this.wakeLinger !== null && this.depth >= this.opts.batch_size) this.wakeLinger();
    return ok;
  }

  private async attempt(body: string, key: string): Promise<Attempt> {
    if (this.abort.signal.aborted) throw new ReceiverClosedError();
    let token: string | undefined;
    try {
      token = await this.token();
    } catch (err) {
      // the path may be logged; the content never is
      return { result: 'network', retryAfterMs: null, detail: `cannot read bearer_token_file ${this.opts.bearer_token_file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}` };
    }
    const h: Record<string, string> = {
      'content-type': 'application/json',
      'user-agent': 'peripety-webhook',
    };
    for (const [name, value] of Object.entries(this.opts.headers)) h[name.toLowerCase()] = value;
    h['idempotency-key'] = key;
    if (token !== undefined) h.authorization = `Bearer ${token}`;
    this.lastRequestAt = performance.now();
    const timeout = AbortSignal.timeout(this.opts.timeout_ms);
    let res: Response;
    try {
      res = await fetch(this.opts.url, {
        method: 'POST',
        headers: h,
        body,
        // never follow: a redirect would carry the token and the body elsewhere (or turn the POST into a GET)
        redirect: 'manual',
        signal: AbortSignal.any([timeout, this.abort.signal]),
      });
    } catch (err) {
      if (this.abort.signal.aborted) throw new ReceiverClosedError();
      if (timeout.aborted) return { result: 'timeout', retryAfterMs: null, detail: `no response within ${this.opts.timeout_ms} ms` };
      return { result: 'network', retryAfterMs: null, detail: networkDetail(err) };
    }
    // The body is not read: only the status matters, and an error page may
    // echo the request (its Authorization header included) into our logs.
    res.body?.cancel().catch(() => undefined);
    const cls = classifyStatus(res.status);
    return {
      result: cls,
      status: res.status,
      retryAfterMs: parseRetryAfter(res.headers.get('retry-after'), Date.now()),
      detail: `HTTP ${res.status}${res.status >= 300 && res.status < 400 ? ' (redirects are not followed: configure the final URL)' : ''}`,
    };
  }

  private async token(): Promise<string | undefined> {
    if (this.opts.bearer_token !== undefined) return this.opts.bearer_token;
    if (this.opts.bearer_token_file === undefined) return undefined;
    const t = (await readFile(this.opts.bearer_token_file, 'utf8')).trim();
    if (!/^[\x21-\x7e]+$/.test(t)) throw new Error('the file does not hold one printable token');
    return t;
  }

  /** (a cancel left behind after the timer is a no-op; the next sleep replaces it) */
  private sleep(ms: number): Promise<void> {
    if (this.abort.signal.aborted) return Promise.reject(new ReceiverClosedError());
    const wait = cancellableSleep(ms);
    this.cancelSleep = wait.cancel;
    return wait.done;
  }

  /** Drain: queued events go out without lingering; retries go on until the timeout, then shutdown() cuts them. */
  override async close(timeoutMs?: number): Promise<void> {
    this.draining = true;
    this.wakeLinger?.();
    await super.close(timeoutMs);
  }

  protected override async shutdown(): Promise<void> {
    this.abort.abort();
    this.cancelSleep?.();
    this.wakeLinger?.();
  }
}

function networkDetail(err: unknown): string {
  const e = err as Error & { cause?: { code?: string; message?: string } };
  const cause = e.cause?.code ?? e.cause?.message;
  return cause ? `${e.message} (${cause})` : e.message;
}

/** Parse the options and build the receiver; a bearer_token_file that cannot be read rejects the configuration. */
export function createWebhookReceiver(name: string, options: Record<string, unknown>, defaultQueue: number, deps: ReceiverDeps): WebhookReceiver {
  const opts = WebhookOptions.parse(options);
  if (opts.bearer_token_file !== undefined) {
    try {
      accessSync(opts.bearer_token_file, fsConstants.R_OK);
    } catch (err) {
      throw new Error(`[${name}] bearer_token_file ${opts.bearer_token_file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  }
  return new WebhookReceiver(name, opts, defaultQueue, deps);
}
