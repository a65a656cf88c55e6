// Who may call the agent's control API (ARCHITECTURE.md "Agent control API").
// In Kubernetes the controller's token is checked with TokenReview (operator
// issue); standalone, a random bearer token in a root-only file under the
// state directory: whoever can read it is as privileged as the agent anyway.
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/** A refusal: 401/403, or 429/503 when the token could not be checked now (`retryAfterSeconds` says when to come back). */
export type AuthResult = { ok: true; who: string } | { ok: false; status: 401 | 403 | 429 | 503; reason: string; retryAfterSeconds?: number };

export interface Authenticator {
  authenticate(authorization: string | undefined): Promise<AuthResult>;
}

/** The token from `Authorization: Bearer <token>`, or null. */
export function bearerToken(header: string | undefined): string | null {
  if (header === undefined || header.length > 8192) return null;
  const m = /^Bearer ([A-Za-z0-9._~+/=-]{1,8000})$/.exec(header);
  return m ? m[1]! : null;
}

export class StaticTokenAuthenticator implements Authenticator {
  private readonly token: Buffer;

  constructor(token: string) {
    if (token.length < 16) throw new Error('the API token must be at least 16 characters');
    this.token = Buffer.from(token);
  }

  authenticate(header: string | undefined): Promise<AuthResult> {
    const given = bearerToken(header);
    if (given === null) return Promise.resolve({ ok: false, status: 401, reason: 'a bearer token is required (Authorization: Bearer <token>)' });
    const b = Buffer.from(given);
    const ok = b.length === this.token.length && timingSafeEqual(b, this.token);
    return Promise.resolve(ok ? { ok: true, who: 'local-token' } : { ok: false, status: 403, reason: 'the token is not valid for this agent' });
  }
}

/** Read the token file, creating it (0600, 32 random bytes) when missing. */
export function loadOrCreateToken(file: string): string {
  if (!existsSync(file)) {
    mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
    // 'wx': never overwrite a token another process just wrote
    try {
      writeFileSync(file, `${randomBytes(32).toString('base64url')}\n`, { mode: 0o600, flag: 'wx' });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
  }
  chmodSync(file, 0o600);
  const token = readFileSync(file, 'utf8').trim();
  if (!/^[A-Za-z0-9._~+/=-]{16,8000}$/.test(token)) throw new Error(`${file} does not hold a valid API token (16+ characters of [A-Za-z0-9._~+/=-])`);
  return token;
}
