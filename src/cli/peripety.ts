// `peripety agent [--config FILE] [--storage-config FILE] [--state-dir DIR]`: the node agent.
// `peripety receive [--config FILE]`: the seed's out-of-process receivers (multicast in).
import { readFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { isIP } from 'node:net';
import { parseListen } from '../api/server.ts';
import { DEFAULT_CONFIG_TOML } from '../config/default.ts';
import { Agent, parseAgentConfig } from '../daemon/agent.ts';
import { createLogger } from '../log/logger.ts';
import { AgentMetrics } from '../metrics/agent-metrics.ts';
import { ReceiveHost, serveMetrics } from '../multicast/receive.ts';
import { DEFAULT_STORAGE_CONFIG } from '../storage/config.ts';
import { parse, runCli, UsageError } from './args.ts';

const USAGE = `usage:
  peripety agent [--config FILE] [--storage-config FILE] [--state-dir DIR]
      run the node agent (default: the embedded configuration; storage: every event
      into <state-dir>/events.db). --config is TOML, --storage-config the elos JSON
  peripety receive [--config FILE] [--interface IP] [--metrics-listen HOST:PORT]
      join the multicast group of the configuration's [main] and hand every event to
      its receiver sections (another process or host); counts and logs lost events
  peripety print-default-config                      print the embedded default configuration
  peripety print-default-storage-config              print the embedded default storage configuration
  peripety --version
`;

function readConfig(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw new Error(`cannot read the configuration ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

async function agentMain(args: string[]): Promise<number | void> {
  const { values } = parse(args, {
    config: { type: 'string', short: 'c' },
    'state-dir': { type: 'string' },
    'storage-config': { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  }, 0);
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const configPath = values.config;
  const source = configPath ?? 'embedded default configuration';
  const config = parseAgentConfig(configPath ? readConfig(configPath) : DEFAULT_CONFIG_TOML, source);
  const log = createLogger(config.main.log_level);
  const storagePath = values['storage-config'];
  const storageConfig = storagePath ? { text: readConfig(storagePath), source: storagePath } : undefined;
  const agent = new Agent({ log, metrics: new AgentMetrics(), stateDir: values['state-dir'], storageConfig });

  // Handlers go in before start: "agent started" tells supervisors and tests
  // that signals are safe, and SIGHUP's default action would kill us.
  let reloading = Promise.resolve();
  process.on('SIGHUP', () => {
    reloading = reloading.then(async () => {
      if (!configPath && !storagePath) {
        log.warn('SIGHUP: running on the embedded default configuration; nothing to reload');
        return;
      }
      // Each file on its own: a broken one keeps its part running, the other still applies.
      for (const [file, apply] of [
        [configPath, (text: string, f: string) => agent.reload(text, f)],
        [storagePath, (text: string, f: string) => agent.reloadStorage(text, f)],
      ] as const) {
        if (!file) continue;
        let text: string;
        try {
          text = readConfig(file);
        } catch (err) {
          log.error({ err: (err as Error).message }, 'SIGHUP: keeping the running configuration');
          continue;
        }
        await apply(text, file);
      }
    });
  });
  const shutdown = (signal: string) => {
    log.info({ signal }, 'draining and exiting');
    void reloading.then(() => agent.stop()).then(() => process.exit(0), (err: unknown) => {
      log.error({ err: (err as Error).message }, 'shutdown failed');
      process.exit(1);
    });
  };
  process.once('SIGTERM', () => shutdown('SIGTERM'));
  process.once('SIGINT', () => shutdown('SIGINT'));
  reloading = agent.start(config);
  await reloading;
}

async function receiveMain(args: string[]): Promise<number | void> {
  const { values } = parse(args, {
    config: { type: 'string', short: 'c' },
    interface: { type: 'string' },
    'metrics-listen': { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  }, 0);
  if (values.help) {
    process.stdout.write(USAGE);
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
  let metricsServer: Server | null = null;
  const shutdown = (signal: string) => {
    void busy.then(async () => {
      const stats = await host.stop();
      metricsServer?.close();
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
    const m = await serveMetrics(metrics, metricsAt.host, metricsAt.port);
    metricsServer = m.server;
    log.info({ listen: `${metricsAt.host}:${m.port}` }, 'metrics listening');
  }
}

await runCli('peripety', USAGE, async () => {
  const [cmd, ...rest] = process.argv.slice(2);
  switch (cmd) {
    case 'agent':
      return agentMain(rest);
    case 'receive':
      return receiveMain(rest);
    case 'print-default-config':
      process.stdout.write(DEFAULT_CONFIG_TOML);
      return 0;
    case 'print-default-storage-config':
      process.stdout.write(`${JSON.stringify(DEFAULT_STORAGE_CONFIG, null, 2)}\n`);
      return 0;
    case '--version':
    case 'version':
      process.stdout.write('peripety 0.1.0\n');
      return 0;
    case undefined:
    case '-h':
    case '--help':
    case 'help':
      process.stdout.write(USAGE);
      return cmd === undefined ? 2 : 0;
    default:
      throw new UsageError(`unknown command "${cmd}"`);
  }
});
