// The controller's HTTP client for the agents' control API (docs/agent-api.md):
// PUT /v1/config with the node's rendered configuration and POST of the
// one-off commands. Every request carries the token for that node's agent
// only (agent-tokens.ts: audience peripety-agent:<node>) and goes to the URL
// endpoint.ts checked against the node's own addresses, never to the Lease's
// text. It answers what happened as a value; the reconcilers decide what that
// means (reconcile-push.ts, reconcile-commands.ts).
//
// node:http, not fetch: fetch loads undici (a bundle and a WebAssembly HTTP
// parser), ~10 MiB of RSS the controller does not need (issue 14). For the
// same reason node:http comes from process.getBuiltinModule, not an `import`:
// an ESM import of node:http builds its module namespace, which reads the
// lazy WebSocket/MessageEvent/CloseEvent exports and so loads undici (+11 MiB
// RSS, measured on Node 24.21; docs/performance.md).
import type { Agent as HttpAgent } from 'node:http';
import type { Agent as HttpsAgent } from 'node:https';
import { setTimeout as sleep } from 'node:timers/promises';

const http = process.getBuiltinModule('node:http');
const https = process.getBuiltinModule('node:https');
import { pushedConfigBody, type PushedConfig } from '../contracts/pushed-config.ts';
import type { AgentTokenSource } from './agent-tokens.ts';
import type { NodeResult } from './commands.ts';
import { errText } from './result.ts';

/** sent with every push: which controller replica pushed */
export const CONTROLLER_HEADER = 'X-Peripety-Controller';
/** tries of one command to one agent that answers 429/503 with retry-after (its TokenReview budget spent) */
const COMMAND_ATTEMPTS = 3;
/** an agent's answer is a short JSON object; more than this is cut off (and is not JSON then) */
const MAX_ANSWER = 64 << 10;

interface Answer {
  status: number;
  retryAfter: string | undefined;
  text: string;
}

/** One request; resolves with the answer (any status), rejects on a transport error or `signal`. */
function send(url: URL, method: string, headers: Record<string, string>, body: string | undefined, signal: AbortSignal, agents: { http: HttpAgent; https: HttpsAgent }): Promise<Answer> {
  const tls = url.protocol === 'https:';
  const h = body === undefined ? headers : { ...headers, 'content-length': String(Buffer.byteLength(body)) };
  return new Promise((resolve, reject) => {
    const req = (tls ? https : http).request(url, { method, headers: h, signal, agent: tls ? agents.https : agents.http }, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        if (size >= MAX_ANSWER) return;
        size += c.length;
        chunks.push(c);
      });
      res.on('end', () => {
        const ra = res.headers['retry-after'];
        resolve({ status: res.statusCode ?? 0, retryAfter: Array.isArray(ra) ? ra[0] : ra, text: Buffer.concat(chunks).toString('utf8').slice(0, MAX_ANSWER) });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

export interface AgentClientOptions {
  /** the per-node tokens for the agents (never one token for all: issue 10 A2) */
  tokens: AgentTokenSource;
  /** this replica (CONTROLLER_HEADER) */
  identity: string;
  pushTimeoutMs?: number;
  /** how long one agent may take to answer a one-off command (flush waits up to 10 s on the agent) */
  commandTimeoutMs?: number;
}

/** What became of one PUT /v1/config. */
export type PushOutcome =
  /** the agent applied it (HTTP 200) */
  | { kind: 'applied' }
  /** `stop` was aborted (no longer the leader, stopping): nothing to report */
  | { kind: 'aborted' }
  /** no answer: connection refused, timeout, no token */
  | { kind: 'unreachable'; error: string }
  /** an answer other than 200: the agent's error message and, with 409, the generation it has applied */
  | { kind: 'refused'; status: number; detail: string; appliedGeneration: number | null };

export class AgentClient {
  private readonly o: AgentClientOptions;
  /** kept-alive connections to the agents (a push and its status follow-ups reach the same agent) */
  private readonly agents = { http: new http.Agent({ keepAlive: true, maxSockets: 2 }), https: new https.Agent({ keepAlive: true, maxSockets: 2 }) };

  constructor(o: AgentClientOptions) {
    this.o = o;
  }

  /** close the kept-alive connections */
  close(): void {
    this.agents.http.destroy();
    this.agents.https.destroy();
  }

  /** the token for `node`'s agent only (audience peripety-agent:<node>): the agent of any other node refuses it */
  private token(node: string): Promise<string> {
    return this.o.tokens.get(node);
  }

  /** the node is gone: drop its token */
  forget(node: string): void {
    this.o.tokens.forget(node);
  }

  /** PUT /v1/config to the agent at `base` (the checked URL); `stop` is the leadership's signal */
  async push(node: string, base: URL, config: PushedConfig, stop: AbortSignal): Promise<PushOutcome> {
    const signal = AbortSignal.any([stop, AbortSignal.timeout(this.o.pushTimeoutMs ?? 5000)]);
    const body = pushedConfigBody(config);
    let res: Answer;
    try {
      // the checked URL, not the Lease's text: exactly the host that was checked
      res = await send(new URL('v1/config', base), 'PUT',
        { 'content-type': 'application/json', authorization: `Bearer ${await this.token(node)}`, [CONTROLLER_HEADER]: this.o.identity }, body, signal, this.agents);
    } catch (err) {
      if (stop.aborted) return { kind: 'aborted' };
      return { kind: 'unreachable', error: errText(err) };
    }
    if (res.status === 200) return { kind: 'applied' };
    const text = res.text;
    let detail = text.slice(0, 300);
    let applied: number | null = null;
    try {
      const j = JSON.parse(text) as { error?: unknown; generation?: unknown };
      if (typeof j.error === 'string') detail = j.error;
      if (typeof j.generation === 'number' && Number.isSafeInteger(j.generation)) applied = j.generation;
    } catch {
      // not JSON
    }
    return { kind: 'refused', status: res.status, detail, appliedGeneration: applied };
  }

  /** POST `path` (commands.ts commandPath) to the agent at `base`; the outcome for status.command */
  async command(node: string, endpoint: string, base: URL, path: string, stop: AbortSignal): Promise<NodeResult> {
    const signal = AbortSignal.any([stop, AbortSignal.timeout(this.o.commandTimeoutMs ?? 30_000)]);
    let res: Answer;
    for (let attempt = 1; ; attempt++) {
      try {
        res = await send(new URL(path, base), 'POST', { authorization: `Bearer ${await this.token(node)}`, [CONTROLLER_HEADER]: this.o.identity }, undefined, signal, this.agents);
      } catch (err) {
        return { node, ok: false, message: `${endpoint} could not be asked: ${errText(err)}` };
      }
      // the agent's TokenReview budget was spent (429/503 with retry-after): nothing ran, so asking
      // again is safe; a few times, within the command's timeout
      const retryAfter = Number(res.retryAfter ?? NaN);
      if ((res.status !== 429 && res.status !== 503) || !(retryAfter >= 0) || attempt >= COMMAND_ATTEMPTS) break;
      try {
        await sleep(Math.min(retryAfter, 5) * 1000, undefined, { signal });
      } catch {
        break;
      }
    }
    if (res.status === 200) return { node, ok: true, message: '' };
    const text = res.text;
    let detail = text.slice(0, 300);
    try {
      const j = JSON.parse(text) as { error?: unknown };
      if (typeof j.error === 'string') detail = j.error;
    } catch {
      // not JSON
    }
    return { node, ok: false, message: `the agent answered HTTP ${res.status}: ${detail}` };
  }
}
