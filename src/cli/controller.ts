// `peripety controller`: flags, the kubeconfig, signals. The work is in src/controller/controller.ts.
import { hostname } from 'node:os';
import { readFileSync } from 'node:fs';
import { parseListen } from '../api/server.ts';
import { parse, UsageError } from './args.ts';
import { createLogger, LOG_LEVELS, type LogLevel } from '../log/logger.ts';
import { MIN_TOKEN_SECONDS } from '../controller/agent-tokens.ts';
import { Controller, DEFAULT_SERVICE_ACCOUNT } from '../controller/controller.ts';
import { type PodOwner, podOwnerFrom } from '../contracts/owner.ts';
import { inClusterConfig, KubeClient, type KubeConfig, parseKubeconfig } from '../k8s/http.ts';

/** the longest per-node token asked for (a day; the chart's bound too) */
const MAX_TOKEN_SECONDS = 86_400;

/** How long the start waits for the API server to answer at all. */
const PROBE_DEADLINE_MS = 10_000;

/**
 * The kubeconfig (a file, else the in-cluster ServiceAccount), checked:
 * a file that is not a kubeconfig, no current cluster, or a server that is
 * not a URL is an error naming the file and the reason.
 */
export function loadClusterConfig(file: string | undefined, env: NodeJS.ProcessEnv = process.env): KubeConfig {
  let cfg: KubeConfig;
  if (file) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      throw new Error(`kubeconfig ${file}: ${code === 'ENOENT' ? 'no such file' : code ?? (err as Error).message.split('\n')[0]}`);
    }
    // its current context's cluster and user; a message naming the file and what is missing
    cfg = parseKubeconfig(text, file);
  } else {
    if (!env.KUBERNETES_SERVICE_HOST) throw new Error('not in a cluster (KUBERNETES_SERVICE_HOST is not set) and no --kubeconfig or $KUBECONFIG given');
    try {
      cfg = inClusterConfig(env);
    } catch (err) {
      throw new Error(`in-cluster configuration: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message.split('\n')[0]}`);
    }
  }
  const where = file ? `kubeconfig ${file}` : 'in-cluster configuration';
  try {
    const u = new URL(cfg.server);
    // src/k8s/http.ts speaks TLS only (node:https): a plain-http server would fail at the first request
    if (u.protocol !== 'https:') throw new Error(`not https: ${u.protocol}`);
  } catch (err) {
    throw new Error(`${where}: server "${String(cfg.server).slice(0, 200)}" is not an https URL (${(err as Error).message})`);
  }
  return cfg;
}

/** Resolve once the API server answers /version (any HTTP answer); reject naming the server and the last error after `deadlineMs`. */
export async function probeCluster(client: KubeClient, deadlineMs: number): Promise<void> {
  const server = client.config.server;
  const until = Date.now() + deadlineMs;
  let last = '';
  for (;;) {
    const left = until - Date.now();
    if (left <= 0) break;
    try {
      // an HTTP error status is an answer: the server is there (RBAC may forbid /version)
      await client.request('GET', '/version', undefined, { timeoutMs: Math.max(1, Math.round(left)) });
      return;
    } catch (err) {
      last = describeFetchError(err);
    }
    await new Promise((r) => setTimeout(r, Math.min(1000, Math.max(0, until - Date.now()))));
  }
  throw new Error(`cannot reach the Kubernetes API server ${server} within ${deadlineMs / 1000} s: ${last}`);
}

function describeFetchError(err: unknown): string {
  const e = err as Error & { code?: unknown; cause?: { code?: string; message?: string } };
  const cause = e.cause?.code ?? e.cause?.message ?? (typeof e.code === 'string' && !e.message.includes(e.code) ? e.code : undefined);
  return cause ? `${e.message.split('\n')[0]} (${cause})` : e.message.split('\n')[0]!;
}

export async function controllerMain(args: string[], usage: string): Promise<number | void> {
  const { values } = parse(args, {
    kubeconfig: { type: 'string' },
    namespace: { type: 'string', default: 'peripety-system' },
    identity: { type: 'string' },
    'metrics-listen': { type: 'string', default: '127.0.0.1:9478' },
    'service-account': { type: 'string', default: DEFAULT_SERVICE_ACCOUNT },
    'agent-token-seconds': { type: 'string', default: String(MIN_TOKEN_SECONDS) },
    // gone: one token file meant one token for every agent (issue 10 A2); refused with the reason
    'agent-token-file': { type: 'string' },
    'log-level': { type: 'string', default: 'info' },
    // the replica's own Pod (the chart: the downward API): the leader Lease's owner
    'pod-name': { type: 'string' },
    'pod-uid': { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  }, 0);
  if (values.help) {
    process.stdout.write(usage);
    return 0;
  }
  if (!(LOG_LEVELS as readonly string[]).includes(values['log-level'])) throw new UsageError(`--log-level: one of ${LOG_LEVELS.join(', ')}`);
  let listen: { host: string; port: number };
  try {
    listen = parseListen(values['metrics-listen']);
  } catch (err) {
    throw new UsageError(`--metrics-listen: ${(err as Error).message}`);
  }
  if (values['agent-token-file'] !== undefined || process.env.PERIPETY_AGENT_TOKEN_FILE) {
    throw new UsageError('--agent-token-file ($PERIPETY_AGENT_TOKEN_FILE) is no longer supported: one token would be good at every agent, so the controller now requests a token per node (audience peripety-agent:<node>) for its ServiceAccount (--service-account) with TokenRequest; remove it');
  }
  const sa = values['service-account'];
  if (!/^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/.test(sa)) throw new UsageError(`--service-account: "${sa.slice(0, 100)}" is not a ServiceAccount name`);
  const tokenSeconds = Number(values['agent-token-seconds']);
  if (!Number.isSafeInteger(tokenSeconds) || tokenSeconds < MIN_TOKEN_SECONDS || tokenSeconds > MAX_TOKEN_SECONDS) {
    throw new UsageError(`--agent-token-seconds: an integer from ${MIN_TOKEN_SECONDS} to ${MAX_TOKEN_SECONDS} (got "${values['agent-token-seconds'].slice(0, 20)}")`);
  }
  let pod: { owner: PodOwner | null; note: string | null };
  try {
    pod = podOwnerFrom(values, process.env);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const owner = pod.owner;
  const log = createLogger(values['log-level'] as LogLevel, 'peripety-controller');
  if (pod.note) log.warn(pod.note);
  const file = values.kubeconfig || process.env.KUBECONFIG || undefined;
  // enough sockets for 32 reconcile workers' status writes and TokenRequests (the watches have their own)
  const client = new KubeClient(loadClusterConfig(file), { maxSockets: 32 });
  // Before anything starts: a controller that cannot reach its cluster would
  // otherwise retry its informers forever and look alive while doing nothing.
  await probeCluster(client, PROBE_DEADLINE_MS);
  const identity = values.identity ?? `${hostname()}-${process.pid}`;
  const controller = new Controller({
    client,
    namespace: values.namespace,
    identity,
    owner,
    log,
    serviceAccount: sa,
    agentTokenSeconds: tokenSeconds,
  });
  const port = await controller.serveMetrics(listen.host, listen.port);
  await controller.start();
  log.info({ identity, namespace: values.namespace, serviceAccount: sa, metrics: `${listen.host}:${port}` }, 'controller started');
  const shutdown = (signal: string): void => {
    controller.stop({ release: true }).then(() => {
      log.info({ signal }, 'controller stopped');
      process.exit(0);
    }, (err: unknown) => {
      log.error({ err: (err as Error).message }, 'shutdown failed');
      process.exit(1);
    });
  };
  process.once('SIGTERM', () => shutdown('SIGTERM'));
  process.once('SIGINT', () => shutdown('SIGINT'));
}
