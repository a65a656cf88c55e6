// Who may call the agent's control API (docs/agent-api.md).
// In Kubernetes the controller's token is checked with TokenReview (operator
// issue); standalone, a random bearer token in a root-only file under the
// state directory: whoever can read it is as privileged as the agent anyway.
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { closeSync, constants as fsConstants, writeSync } from 'node:fs';
import path from 'node:path';
import { Counter, type Registry } from 'prom-client';
import { perRegistry } from '../metrics/per-registry.ts';
import {
  checkRegularOrAbsent, makeDirs, MAX_TOKEN_FILE_BYTES, openPrivateFile, PRIVATE_DIR_MODE, PRIVATE_FILE_MODE, readRegularFile, refuseVirtualFs, tightenMode,
} from '../fsutil/safe-files.ts';

/** A refusal: 401/403, or 429/503 when the token could not be checked now (`retryAfterSeconds` says when to come back). */
export type AuthResult = { ok: true; who: string } | { ok: false; status: 401 | 403 | 429 | 503; reason: string; retryAfterSeconds?: number };

export interface Authenticator {
  /** `client`: the caller's address key (limits.ts clientKey), for authenticators that limit per client */
  authenticate(authorization: string | undefined, client?: string): Promise<AuthResult>;
  /** The server's registry, given at start: refusals are counted there (peripety_api_refused_total). */
  bindMetrics?(registry: Registry): void;
}

/** Why an authenticator refused (bounded label values of peripety_api_refused_total). */
const REFUSAL_REASONS = ['no_token', 'malformed_token', 'invalid_token', 'wrong_audience', 'wrong_identity', 'review_failed', 'review_rate_limited', 'review_busy'] as const;
export type RefusalReason = (typeof REFUSAL_REASONS)[number];

/** peripety_api_refused_total on `registry`, shared by every authenticator. */
export const refusalCounter = perRegistry((registry: Registry): Counter<'reason'> => {
  const c = new Counter({
    name: 'peripety_api_refused_total', help: 'API requests refused by the authenticator (401/403/429/503), by reason', labelNames: ['reason'], registers: [registry],
  });
  for (const r of REFUSAL_REASONS) c.labels(r).inc(0);
  return c;
});

/** The token from `Authorization: Bearer <token>`, or null. */
export function bearerToken(header: string | undefined): string | null {
  if (header === undefined || header.length > 8192) return null;
  const m = /^Bearer ([A-Za-z0-9._~+/=-]{1,8000})$/.exec(header);
  return m ? m[1]! : null;
}

/** Standalone: the token file's token (constant-time compare); refusals no_token and invalid_token. */
export class StaticTokenAuthenticator implements Authenticator {
  private readonly token: Buffer;
  private refused: Counter<'reason'> | null = null;

  constructor(token: string) {
    if (token.length < 16) throw new Error('the API token must be at least 16 characters');
    this.token = Buffer.from(token);
  }

  bindMetrics(registry: Registry): void {
    this.refused = refusalCounter(registry);
  }

  authenticate(header: string | undefined): Promise<AuthResult> {
    const given = bearerToken(header);
    if (given === null) {
      this.refused?.labels('no_token').inc();
      return Promise.resolve({ ok: false, status: 401, reason: 'a bearer token is required (Authorization: Bearer <token>)' });
    }
    const b = Buffer.from(given);
    const ok = b.length === this.token.length && timingSafeEqual(b, this.token);
    if (!ok) this.refused?.labels('invalid_token').inc();
    return Promise.resolve(ok ? { ok: true, who: 'local-token' } : { ok: false, status: 403, reason: 'the token is not valid for this agent' });
  }
}

/**
 * Read the token file, creating it (0600, 32 random bytes) when missing.
 * The file is the agent's own: a symbolic link, device or FIFO is refused,
 * it is read up to MAX_TOKEN_FILE_BYTES and made 0600; nothing is created
 * under /proc or /sys, and a missing directory is created 0700.
 */
export function loadOrCreateToken(file: string): string {
  refuseVirtualFs(file, 'the API token file');
  if (checkRegularOrAbsent(file, 'the API token file') === 'absent') {
    makeDirs(path.dirname(file), PRIVATE_DIR_MODE);
    // O_EXCL: never overwrite a token another process just wrote
    try {
      const fd = openPrivateFile(file, 'the API token file', fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL);
      try {
        writeSync(fd, `${randomBytes(32).toString('base64url')}\n`);
      } finally {
        closeSync(fd);
      }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
  }
  const token = readRegularFile(file, 'the API token file', { maxBytes: MAX_TOKEN_FILE_BYTES, noFollow: true }).trim();
  tightenMode(file, PRIVATE_FILE_MODE);
  if (!/^[A-Za-z0-9._~+/=-]{16,8000}$/.test(token)) throw new Error(`${file} does not hold a valid API token (16+ characters of [A-Za-z0-9._~+/=-])`);
  return token;
}
