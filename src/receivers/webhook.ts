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
//
// Acknowledged (docs/architecture.md "Acknowledgement"): the server answered
// 2xx for the batch, or it was given up (rejected, retries run out) and
// counted.
import { accessSync, constants as fsConstants } from 'node:fs';
import { readFile } from 'node:fs/promises';
import type { Ack } from '../contracts/ack.ts';
import type { StorageEvent } from '../events/schema.ts';
import { cancellableSleep, QueuedReceiver, ReceiverClosedError, type ReceiverDeps } from './queued.ts';
import { receiverMetrics, type ReceiverMetrics, type WebhookResult } from './receiver-metrics.ts';
import { backoffDelay, classifyStatus, idempotencyKey, parseRetryAfter, payload } from './webhook-format.ts';
import { WebhookOptions } from './options.ts';


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

  override deliver(ev: StorageEvent, ack: Ack): boolean {
    const ok = super.deliver(ev, ack);
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
