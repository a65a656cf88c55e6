// `peripety agent [--config FILE] [--storage-config FILE] [--state-dir DIR]`: the node agent.
import { readFileSync } from 'node:fs';
import { DEFAULT_CONFIG_TOML } from '../config/default.ts';
import { Agent, parseAgentConfig } from '../daemon/agent.ts';
import { createLogger } from '../log/logger.ts';
import { AgentMetrics } from '../metrics/agent-metrics.ts';
import { DEFAULT_STORAGE_CONFIG } from '../storage/config.ts';
import { parse, runCli, UsageError } from './args.ts';

const USAGE = `usage:
  peripety agent [--config FILE] [--storage-config FILE] [--state-dir DIR]
      run the node agent (default: the embedded configuration; storage: every event
      into <state-dir>/events.db). --config is TOML, --storage-config the elos JSON
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

await runCli('peripety', USAGE, async () => {
  const [cmd, ...rest] = process.argv.slice(2);
  switch (cmd) {
    case 'agent':
      return agentMain(rest);
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
