// The options of the receivers in this folder (stdout, journald, webhook):
// pure, so that configuration checks (the CRD code, the controller) read them
// without loading a receiver (journald's loads a native addon).
import { z } from 'zod';
import { MAX_ENTRY_BYTES } from './journald-format.ts';
import { WEBHOOK_FORMATS } from './webhook-format.ts';
import type { PluginInfo } from '../contracts/plugin.ts';

export const StdoutOptions = z.strictObject({
  format: z.enum(['text', 'json']).default('text'),
  queue_size: z.number().int().min(1).max(10_000_000).optional(),
});
export type StdoutOptions = z.infer<typeof StdoutOptions>;

const DEFAULT_JOURNAL_SOCKET = '/run/systemd/journal/socket';

/** sun_path holds 108 bytes with the terminating NUL. */
const SUN_PATH_MAX = 107;

export const JournaldOptions = z.strictObject({
  /** journald's native socket (another path for a journald namespace, or for tests) */
  socket: z.string()
    .refine((s) => s.startsWith('/'), { message: 'must be an absolute path' })
    .refine((s) => Buffer.byteLength(s) <= SUN_PATH_MAX && !s.includes('\0'), { message: `must fit a unix socket address (at most ${SUN_PATH_MAX} bytes, no NUL)` })
    .default(DEFAULT_JOURNAL_SOCKET),
  /** SYSLOG_IDENTIFIER of every entry (journalctl -t) */
  identifier: z.string().min(1).max(64).regex(/^[^\x00-\x1f\x7f]+$/, 'must not contain control characters').default('peripety'),
  /** entries larger than this go through a sealed memfd instead of the datagram itself (so do those the kernel refuses with EMSGSIZE) */
  memfd_threshold_bytes: z.number().int().min(0).max(MAX_ENTRY_BYTES).default(64 * 1024),
  queue_size: z.number().int().min(1).max(10_000_000).optional(),
});
export type JournaldOptions = z.infer<typeof JournaldOptions>;

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
const FORBIDDEN_HEADERS = new Set([
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

export const STDOUT_PLUGIN: PluginInfo<StdoutOptions> = {
  name: 'stdout',
  description: 'one line per event on standard output, text or JSON',
  options: StdoutOptions,
};

export const JOURNALD_PLUGIN: PluginInfo<JournaldOptions> = {
  name: 'journald',
  description: "one systemd journal entry per event (journald's native protocol)",
  options: JournaldOptions,
};

export const WEBHOOK_PLUGIN: PluginInfo<WebhookOptions> = {
  name: 'webhook',
  description: "events POSTed as JSON batches to an HTTP(S) URL (peripety's shape or Alertmanager alerts), retried with backoff",
  options: WebhookOptions,
};
