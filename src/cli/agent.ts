// `peripety agent` and `peripety receive`: the commands that run the agent's
// code. src/cli/peripety.ts loads this module only for them, so that
// `peripety controller` never loads the agent (docs/architecture.md, "Layers").
import { isIP } from 'node:net';
import { parseListen } from '../api/server.ts';
import { answerOf } from '../api/status.ts';
import { agentAudience, DEFAULT_CONTROLLER_IDENTITY, TokenReviewAuthenticator } from '../api/tokenreview.ts';
// Kubernetes mode only (the API client, the Lease, Secrets, the kubeconfig's
// YAML parser): loaded by `await import` when --kubernetes/--kubeconfig is
// given, so a standalone agent never loads them (issue 14: load only what the
// configuration uses). Types only here.
import type { KubeClient } from '../k8s/http.ts';
import type { AgentRegistration } from '../k8s/registration.ts';
import { type PodOwner, podOwnerFrom } from '../contracts/owner.ts';
import { DEFAULT_CONFIG_TOML } from '../config/default.ts';
import { Agent, mainSectionToml, parseAgentConfig } from '../agent/agent.ts';
import { MAX_STORAGE_CONFIG_BYTES, MAX_TOML_CONFIG_BYTES, readRegularFile, UnsafePathError } from '../fsutil/safe-files.ts';
import { createLogger } from '../log/logger.ts';
import { AgentMetrics } from '../metrics/agent-metrics.ts';
import { type ProbeServer, serveProbes } from '../metrics/http.ts';
import { ReceiveHost } from '../agent/receive.ts';
import type { SecretResolver } from '../storage/types.ts';
import { parse, UsageError } from './args.ts';
import { processActions, startMemoryRelief } from './memory-relief.ts';

/** A configuration file: a regular file (a link to one is fine: ConfigMap mounts), at most `maxBytes`. */
function readConfig(file: string, maxBytes = MAX_TOML_CONFIG_BYTES): string {
  try {
    return readRegularFile(file, 'the configuration', { maxBytes });
  } catch (err) {
    if (err instanceof UnsafePathError) throw err;
    throw new Error(`cannot read the configuration ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

export async function agentMain(args: string[], usage: string): Promise<number | void> {
  const { values } = parse(args, {
    config: { type: 'string', short: 'c' },
    'state-dir': { type: 'string' },
    'storage-config': { type: 'string' },
    kubeconfig: { type: 'string' },
    kubernetes: { type: 'boolean' },
    'node-name': { type: 'string' },
    'pod-name': { type: 'string' },
    'pod-uid': { type: 'string' },
    namespace: { type: 'string' },
    'controller-identity': { type: 'string' },
    advertise: { type: 'string' },
    'api-listen-ip': { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  }, 0);
  if (values.help) {
    process.stdout.write(usage);
    return 0;
  }
  const configPath = values.config;
  const source = configPath ?? 'embedded default configuration';
  const configText = configPath ? readConfig(configPath) : DEFAULT_CONFIG_TOML;
  const config = parseAgentConfig(configText, source);
  const log = createLogger(config.main.log_level);
  const storagePath = values['storage-config'];
  const storageConfig = storagePath ? { text: readConfig(storagePath, MAX_STORAGE_CONFIG_BYTES), source: storagePath } : undefined;
  const metrics = new AgentMetrics();
  const k8s = kubernetesMode(values);
  const apiListenIp = values['api-listen-ip'];
  if (apiListenIp !== undefined && isIP(apiListenIp) === 0) throw new UsageError(`--api-listen-ip: "${apiListenIp.slice(0, 100)}" is not an IP address`);
  if (apiListenIp !== undefined && config.main.api_listen === 'off') throw new UsageError('--api-listen-ip: [main] api_listen is off (set it to the port to listen on)');
  let registration: AgentRegistration | null = null;
  let kube: KubeClient | null = null;
  let auth: TokenReviewAuthenticator | undefined;
  let secrets: SecretResolver | undefined;
  if (k8s) {
    if (config.main.api_listen === 'off') throw new UsageError('Kubernetes mode needs the control API: set [main] api_listen');
    const [{ inClusterConfig, KubeClient, loadKubeconfig }, { kubeSecretResolver }] = await Promise.all([import('../k8s/http.ts'), import('../k8s/secrets.ts')]);
    kube = new KubeClient(k8s.kubeconfig ? loadKubeconfig(k8s.kubeconfig) : inClusterConfig());
    // the audience names this node: a token the controller made for another node is refused (wrong_audience)
    auth = new TokenReviewAuthenticator({ client: kube, log, registry: metrics.registry, controllerIdentity: k8s.controllerIdentity, audience: agentAudience(k8s.nodeName) });
    // storage backends read their Secrets (postgres ConnectionSecret) in the agent's namespace, as the agent
    secrets = kubeSecretResolver({ client: kube, namespace: k8s.namespace });
  }
  const agent = new Agent({
    log, metrics, stateDir: values['state-dir'], storageConfig, configText, auth, secrets, apiListenIp,
    // The node this agent speaks for is the one every part must name (the
    // events' hostname, the k8s-events receiver's Node): --node-name wins over
    // $NODE_NAME. [main] hostname, when set, still overrides it on purpose.
    nodeName: k8s?.nodeName,
    files: { config: configPath, storage: storagePath },
    pushed: k8s ? { localMain: mainSectionToml(configText) } : undefined,
    onApplied: (a) => registration?.setApplied(a),
  });

  // Handlers go in before start: "agent started" tells supervisors and tests
  // that signals are safe, and SIGHUP's default action would kill us.
  // SIGHUP is POST /v1/reload: the configuration file and the storage file
  // are read again and applied together, whole or not at all (the running
  // configuration stays exactly as it was when anything is wrong). Nothing
  // here may reject: a signal handler has nobody to report to but the log.
  let started = false;
  let reloading: Promise<unknown> = Promise.resolve();
  process.on('SIGHUP', () => {
    reloading = reloading.then(async () => {
      if (!started) {
        log.warn('SIGHUP before the agent started; ignored');
        return;
      }
      if (!configPath && !storagePath) {
        log.warn('SIGHUP: running on the embedded default configuration; nothing to reload');
        return;
      }
      const r = answerOf(await agent.reloadConfig());
      if (r.status !== 200) log.error({ status: r.status, ...(r.body as Record<string, unknown>) }, 'SIGHUP: reload refused; the running configuration is unchanged');
      else log.info({ ...(r.body as Record<string, unknown>) }, 'SIGHUP: configuration reloaded');
    }).catch((err: unknown) => {
      log.error({ err: (err as Error).message }, 'SIGHUP: reload failed; the running configuration is unchanged');
    });
  });
  const shutdown = (signal: string) => {
    log.info({ signal }, 'draining and exiting');
    void reloading.then(() => registration?.stop()).then(() => agent.stop()).then(() => process.exit(0), (err: unknown) => {
      log.error({ err: (err as Error).message }, 'shutdown failed');
      process.exit(1);
    });
  };
  process.once('SIGTERM', () => shutdown('SIGTERM'));
  process.once('SIGINT', () => shutdown('SIGINT'));
  // A fatal start error (API address, token, state directory) rejects here
  // after the agent stopped what it had started; runCli prints it and the
  // process exits non-zero (below), never running on headless.
  const starting = agent.start(config);
  // SIGTERM during the start waits for it (then stops what runs); SIGHUP too
  reloading = starting.catch(() => {});
  await starting;
  started = true;
  // after a storm, the heap's garbage and glibc's free pages go back to the kernel (memory-relief.ts)
  startMemoryRelief({ log, registry: metrics.registry, actions: await processActions() });
  if (k8s && kube) {
    const at = agent.apiListen!;
    const endpoint = k8s.advertise ?? `http://${at.host.includes(':') ? `[${at.host}]` : at.host}:${at.port}`;
    const { AgentRegistration } = await import('../k8s/registration.ts');
    registration = new AgentRegistration({ client: kube, log, namespace: k8s.namespace, nodeName: k8s.nodeName, endpoint, degraded: () => agent.degraded, owner: k8s.pod });
    const applied = agent.applied;
    if (applied) registration.setApplied(applied);
    registration.start();
    if (k8s.podNote) log.warn(k8s.podNote);
    log.info({ lease: `${k8s.namespace}/${registration.name}`, endpoint, owner: k8s.pod ? `Pod/${k8s.pod.name}` : null }, 'registering the agent');
  }
}

interface KubernetesMode {
  kubeconfig: string | null;
  nodeName: string;
  /** the agent's own Pod (--pod-name/--pod-uid, $POD_NAME/$POD_UID): its Lease's owner; null on a plain host */
  pod: PodOwner | null;
  /** why there is no owner although $POD_NAME or $POD_UID is set (logged) */
  podNote: string | null;
  namespace: string;
  controllerIdentity: string;
  advertise: string | null;
}

/** The Kubernetes-mode flags, or null when neither --kubeconfig nor --kubernetes is given. */
function kubernetesMode(values: { kubeconfig?: string; kubernetes?: boolean; 'node-name'?: string; 'pod-name'?: string; 'pod-uid'?: string; namespace?: string; 'controller-identity'?: string; advertise?: string }): KubernetesMode | null {
  const others = (['node-name', 'pod-name', 'pod-uid', 'namespace', 'controller-identity', 'advertise'] as const).filter((k) => values[k] !== undefined);
  if (values.kubeconfig === undefined && !values.kubernetes) {
    if (others.length > 0) throw new UsageError(`--${others[0]} needs Kubernetes mode (--kubeconfig FILE or --kubernetes)`);
    return null;
  }
  if (values.kubeconfig === undefined && !process.env.KUBERNETES_SERVICE_HOST) throw new UsageError('--kubernetes: KUBERNETES_SERVICE_HOST is not set (not in a pod); use --kubeconfig FILE');
  const nodeName = values['node-name'] ?? process.env.NODE_NAME;
  if (!nodeName) throw new UsageError('Kubernetes mode needs --node-name NAME (or $NODE_NAME)');
  if (!/^[a-z0-9]([-a-z0-9.]{0,200}[a-z0-9])?$/.test(nodeName)) throw new UsageError(`--node-name: "${nodeName.slice(0, 100)}" is not a node name (lower case DNS subdomain)`);
  let owner: { owner: PodOwner | null; note: string | null };
  try {
    owner = podOwnerFrom(values, process.env);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const namespace = values.namespace ?? 'peripety-system';
  if (!/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/.test(namespace)) throw new UsageError(`--namespace: "${namespace.slice(0, 100)}" is not a namespace name`);
  const controllerIdentity = values['controller-identity'] ?? DEFAULT_CONTROLLER_IDENTITY;
  if (!/^\S{1,300}$/.test(controllerIdentity)) throw new UsageError('--controller-identity: a user name such as system:serviceaccount:<namespace>:<name>');
  const advertise = values.advertise ?? null;
  if (advertise !== null && !/^https?:\/\/[^\s/]+\/?$/.test(advertise)) throw new UsageError(`--advertise: "${advertise.slice(0, 100)}" must be a URL http(s)://host:port`);
  return { kubeconfig: values.kubeconfig ?? null, nodeName, pod: owner.owner, podNote: owner.note, namespace, controllerIdentity, advertise: advertise?.replace(/\/$/, '') ?? null };
}

export async function receiveMain(args: string[], usage: string): Promise<number | void> {
  const { values } = parse(args, {
    config: { type: 'string', short: 'c' },
    interface: { type: 'string' },
    'metrics-listen': { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  }, 0);
  if (values.help) {
    process.stdout.write(usage);
    return 0;
  }
  if (values.interface !== undefined && isIP(values.interface) !== 4) throw new UsageError(`--interface: "${values.interface.slice(0, 100)}" is not an IPv4 address (the local address of the interface to join on)`);
  let metricsAt: { host: string; port: number } | null = null;
  if (values['metrics-listen'] !== undefined) {
    try {
      metricsAt = parseListen(values['metrics-listen']);
    } catch (err) {
      throw new UsageError(`--metrics-listen: ${(err as Error).message}`);
    }
  }
  const configPath = values.config;
  const config = parseAgentConfig(configPath ? readConfig(configPath) : DEFAULT_CONFIG_TOML, configPath ?? 'embedded default configuration');
  const log = createLogger(config.main.log_level);
  const metrics = new AgentMetrics();
  const host = new ReceiveHost({ log, metrics, interfaceIp: values.interface });
  let busy = Promise.resolve();
  process.on('SIGHUP', () => {
    busy = busy.then(async () => {
      if (!configPath) {
        log.warn('SIGHUP: running on the embedded default configuration; nothing to reload');
        return;
      }
      try {
        await host.reload(parseAgentConfig(readConfig(configPath), configPath));
      } catch (err) {
        log.error({ err: (err as Error).message }, 'SIGHUP: keeping the running configuration');
      }
    });
  });
  let metricsServer: ProbeServer | null = null;
  const shutdown = (signal: string) => {
    void busy.then(async () => {
      const stats = await host.stop();
      void metricsServer?.close();
      log.info({ signal, ...stats }, 'multicast receive stopped');
      process.exit(0);
    }).catch((err: unknown) => {
      log.error({ err: (err as Error).message }, 'shutdown failed');
      process.exit(1);
    });
  };
  process.once('SIGTERM', () => shutdown('SIGTERM'));
  process.once('SIGINT', () => shutdown('SIGINT'));
  busy = host.start(config);
  await busy;
  if (metricsAt) {
    // /metrics only, as always: receive has no readiness of its own to report
    metricsServer = await serveProbes({ registry: metrics.registry, health: false, host: metricsAt.host, port: metricsAt.port });
    log.info({ listen: `${metricsAt.host}:${metricsServer.port}` }, 'metrics listening');
  }
}
