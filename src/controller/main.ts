// `peripety controller`: flags, the kubeconfig, signals. The work is in controller.ts.
import { hostname } from 'node:os';
import { KubeConfig } from '@kubernetes/client-node';
import { parseListen } from '../api/server.ts';
import { parse, UsageError } from '../cli/args.ts';
import { createLogger, LOG_LEVELS, type LogLevel } from '../log/logger.ts';
import { Controller } from './controller.ts';

export async function controllerMain(args: string[], usage: string): Promise<number | void> {
  const { values } = parse(args, {
    kubeconfig: { type: 'string' },
    namespace: { type: 'string', default: 'peripety-system' },
    identity: { type: 'string' },
    'metrics-listen': { type: 'string', default: '127.0.0.1:9478' },
    'agent-token-file': { type: 'string' },
    'log-level': { type: 'string', default: 'info' },
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
  const log = createLogger(values['log-level'] as LogLevel, 'peripety-controller');
  const kc = new KubeConfig();
  const file = values.kubeconfig ?? process.env.KUBECONFIG;
  if (file) kc.loadFromFile(file);
  else kc.loadFromCluster();
  const identity = values.identity ?? `${hostname()}-${process.pid}`;
  const controller = new Controller({
    kubeconfig: kc,
    namespace: values.namespace,
    identity,
    log,
    agentTokenFile: values['agent-token-file'] ?? process.env.PERIPETY_AGENT_TOKEN_FILE,
  });
  const port = await controller.serveMetrics(listen.host, listen.port);
  await controller.start();
  log.info({ identity, namespace: values.namespace, metrics: `${listen.host}:${port}` }, 'controller started');
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
