// What keeps the agent's HTTP API answering under a cheap attack (issue 10
// A5, docs/agent-api.md "Limits"): a connection budget per client address
// with a reserve for clients that hold none, and a token bucket for work
// that costs someone else (TokenReviews). Pure: the server and the
// authenticator feed them addresses and clock readings.

/**
 * The key a client is counted under: its address, IPv4-mapped IPv6
 * unwrapped (one client either way) and an IPv6 zone dropped. IPv6 addresses
 * count one by one, not by /64: in Kubernetes the pods of a node usually
 * share one /64 (the node's pod range), so a prefix would make Prometheus
 * share its budget with every pod beside it; a pod has one address.
 */
export function clientKey(address: string | undefined): string {
  if (!address) return 'unknown';
  const a = address.toLowerCase().split('%')[0]!;
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/.exec(a);
  return mapped ? mapped[1]! : a;
}

type ConnectionRefusal = 'per_client_limit' | 'total_limit';

interface ConnectionBudgetOptions {
  /** connections open at once, all clients together */
  total: number;
  /** connections one client (clientKey) may hold */
  perClient: number;
  /**
   * the last this-many slots of `total` go only to clients that hold no
   * connection yet: a probe (kubelet, Prometheus, the controller) still gets
   * in when many addresses flood together
   */
  reserved: number;
}

/** Open connections per client, and whether one more may open. */
export class ConnectionBudget {
  private readonly opts: ConnectionBudgetOptions;
  private readonly perClient = new Map<string, number>();
  private open = 0;

  constructor(opts: ConnectionBudgetOptions) {
    if (opts.perClient < 1 || opts.total < opts.perClient || opts.reserved < 0 || opts.reserved >= opts.total) {
      throw new Error(`connection limits: need 1 ≤ perClient (${opts.perClient}) ≤ total (${opts.total}) and 0 ≤ reserved (${opts.reserved}) < total`);
    }
    this.opts = opts;
  }

  /** Count a new connection of `client`, or say why it is refused (nothing counted then). */
  admit(client: string): ConnectionRefusal | null {
    const held = this.perClient.get(client) ?? 0;
    if (held >= this.opts.perClient) return 'per_client_limit';
    if (this.open >= this.opts.total) return 'total_limit';
    if (held > 0 && this.open >= this.opts.total - this.opts.reserved) return 'total_limit';
    this.perClient.set(client, held + 1);
    this.open++;
    return null;
  }

  /** A connection admitted for `client` closed. */
  release(client: string): void {
    const held = this.perClient.get(client) ?? 0;
    if (held <= 0) return;
    if (held === 1) this.perClient.delete(client);
    else this.perClient.set(client, held - 1);
    this.open--;
  }

  get size(): number {
    return this.open;
  }

  /** clients with at least one connection */
  get clients(): number {
    return this.perClient.size;
  }
}

/** A token bucket: `burst` at once, refilled at `perSecond`. */
export class TokenBucket {
  private readonly burst: number;
  private readonly perSecond: number;
  private readonly now: () => number;
  private tokens: number;
  private last: number;

  constructor(opts: { burst: number; perSecond: number; now?: () => number }) {
    this.burst = opts.burst;
    this.perSecond = opts.perSecond;
    this.now = opts.now ?? Date.now;
    this.tokens = opts.burst;
    this.last = this.now();
  }

  /** Whether a token is there now (nothing taken). */
  peek(): boolean {
    const t = this.now();
    this.tokens = Math.min(this.burst, this.tokens + ((t - this.last) / 1000) * this.perSecond);
    this.last = t;
    return this.tokens >= 1;
  }

  /** Take one token; false when none is left. */
  take(): boolean {
    if (!this.peek()) return false;
    this.tokens -= 1;
    return true;
  }

  /** true when the bucket has refilled to its burst (forgetting it changes nothing) */
  get full(): boolean {
    this.peek();
    return this.tokens >= this.burst;
  }

  /** whole seconds until the next token (for Retry-After) */
  get retryAfterSeconds(): number {
    return Math.max(1, Math.ceil((1 - this.tokens) / this.perSecond));
  }
}

export interface ReviewLimits {
  /** reviews for all clients together: burst, then per second */
  burst: number;
  perSecond: number;
  /** reviews for one client: burst, then per second */
  clientBurst: number;
  clientPerSecond: number;
  /** reviews waiting on the API server at once: all clients, one client */
  inFlight: number;
  clientInFlight: number;
  /** clients remembered (beyond: the idle ones are forgotten, their buckets being full anyway) */
  maxClients?: number;
}

type ReviewAdmissionResult =
  | { ok: true; release: () => void }
  | { ok: false; reason: 'review_rate_limited' | 'review_busy'; retryAfterSeconds: number };

interface ClientReviews {
  bucket: TokenBucket;
  inFlight: number;
}

/**
 * Whether one more costly check (a TokenReview) may start now: a token
 * bucket and an in-flight bound for everyone, and smaller ones per client,
 * so that one client's junk cannot spend everyone's budget (a rotated
 * controller token from another address still gets its review). Nothing is
 * queued: the answer is now or "come back later".
 */
export class ReviewAdmission {
  private readonly limits: ReviewLimits;
  private readonly now: () => number;
  private readonly global: TokenBucket;
  private readonly clients = new Map<string, ClientReviews>();
  private inFlight = 0;

  constructor(limits: ReviewLimits, now: () => number = Date.now) {
    this.limits = limits;
    this.now = now;
    this.global = new TokenBucket({ burst: limits.burst, perSecond: limits.perSecond, now });
  }

  admit(client: string): ReviewAdmissionResult {
    const c = this.client(client);
    // in flight first: a busy answer spends no token
    if (c.inFlight >= this.limits.clientInFlight || this.inFlight >= this.limits.inFlight) {
      return { ok: false, reason: 'review_busy', retryAfterSeconds: 1 };
    }
    if (!c.bucket.peek()) return { ok: false, reason: 'review_rate_limited', retryAfterSeconds: c.bucket.retryAfterSeconds };
    if (!this.global.take()) return { ok: false, reason: 'review_rate_limited', retryAfterSeconds: this.global.retryAfterSeconds };
    c.bucket.take();
    c.inFlight++;
    this.inFlight++;
    let released = false;
    return {
      ok: true,
      release: () => {
        if (released) return;
        released = true;
        c.inFlight--;
        this.inFlight--;
      },
    };
  }

  /** clients remembered now */
  get size(): number {
    return this.clients.size;
  }

  private client(key: string): ClientReviews {
    let c = this.clients.get(key);
    if (c) return c;
    const max = this.limits.maxClients ?? 4096;
    if (this.clients.size >= max) {
      for (const [k, e] of this.clients) {
        if (e.inFlight === 0 && e.bucket.full) this.clients.delete(k);
      }
      // still full (many clients, all active): forget the oldest idle ones; they start afresh
      for (const [k, e] of this.clients) {
        if (this.clients.size < max) break;
        if (e.inFlight === 0) this.clients.delete(k);
      }
    }
    c = { bucket: new TokenBucket({ burst: this.limits.clientBurst, perSecond: this.limits.clientPerSecond, now: this.now }), inFlight: 0 };
    this.clients.set(key, c);
    return c;
  }
}
