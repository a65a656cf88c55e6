// `peripety agent [--config FILE] [--storage-config FILE] [--state-dir DIR]`: the node agent.
// `peripety receive [--config FILE]`: the seed's out-of-process receivers (multicast in).
//
// Each command's module is loaded when the command runs (`agent`/`receive`:
// ./agent.ts; `controller`: ./controller.ts), so a command loads only
// what it uses (docs/architecture.md, "Layers").
import { DEFAULT_CONTROLLER_IDENTITY } from '../api/tokenreview.ts';
import { runCli, UsageError } from './args.ts';

const USAGE = `usage:
  peripety agent [--config FILE] [--storage-config FILE] [--state-dir DIR]
      run the node agent (default: the embedded configuration; storage: every event
      into <state-dir>/events.db). --config is TOML, --storage-config the elos JSON
  peripety agent (--kubeconfig FILE | --kubernetes) [--node-name NAME] [--namespace NS]
                 [--pod-name NAME --pod-uid UID] [--controller-identity USER] [--advertise URL] [--api-listen-ip IP] [--config FILE] …
      Kubernetes mode (docs/agent-api.md): the control API checks bearer tokens with
      TokenReview (audience peripety-agent:<node name>; only --controller-identity, default
      ${DEFAULT_CONTROLLER_IDENTITY}),
      takes pushed configurations (kept in <state-dir>/applied.json and used at start)
      and registers the agent in the Lease peripety-agent-<node> (--kubernetes: the
      in-cluster ServiceAccount; --node-name defaults to $NODE_NAME, --namespace to
      peripety-system, --advertise to http://<api_listen>; --api-listen-ip binds the
      control API to that address only, with [main] api_listen's port, e.g. a
      DaemonSet's $(NODE_IP)); --pod-name/--pod-uid (default $POD_NAME/$POD_UID, both or
      neither) name the agent's own Pod as the Lease's owner, so it goes with the Pod
  peripety receive [--config FILE] [--interface IP] [--metrics-listen HOST:PORT]
      join the multicast group of the configuration's [main] and hand every event to
      its receiver sections (another process or host); counts and logs lost events
  peripety controller [--kubeconfig FILE] [--namespace NS] [--identity ID]
                     [--metrics-listen HOST:PORT] [--service-account NAME]
                     [--agent-token-seconds N] [--pod-name NAME --pod-uid UID]
      run the controller: watch StorageEventPlugins, StorageBackends, Nodes and the
      agents' Leases in NS (default peripety-system), push each node's configuration
      to its agent, write status; leader election with the Lease peripety-controller
      (ID default hostname-pid); metrics on 127.0.0.1:9478 by default. For each node
      it requests a token (audience peripety-agent:<node>, N seconds, default 600)
      for its own ServiceAccount NS/NAME (default peripety-controller) by TokenRequest.
      --pod-name/--pod-uid (default $POD_NAME/$POD_UID, both or neither): the leader's
      own Pod owns the leader Lease, so it goes with the Pod
  peripety print-default-config                      print the embedded default configuration
  peripety print-default-storage-config              print the embedded default storage configuration
  peripety list-plugins                              the collectors, parsers, receivers and storage backends
                                                     a configuration may name, one line each
  peripety --version
`;

await runCli('peripety', USAGE, async () => {
  return peripetyMain();
});
// A failed start leaves nothing worth waiting for (timers, half-open
// clients): exit with the code runCli set instead of lingering.
if (process.exitCode !== undefined && process.exitCode !== 0) process.exit();

async function peripetyMain(): Promise<number | void> {
  const [cmd, ...rest] = process.argv.slice(2);
  switch (cmd) {
    case 'agent':
      return (await import('./agent.ts')).agentMain(rest, USAGE);
    case 'receive':
      return (await import('./agent.ts')).receiveMain(rest, USAGE);
    case 'controller':
      return (await import('./controller.ts')).controllerMain(rest, USAGE);
    case 'print-default-config':
      process.stdout.write((await import('../config/default.ts')).DEFAULT_CONFIG_TOML);
      return 0;
    case 'print-default-storage-config':
      process.stdout.write(`${JSON.stringify((await import('../storage/config.ts')).DEFAULT_STORAGE_CONFIG, null, 2)}\n`);
      return 0;
    case 'list-plugins':
      process.stdout.write((await import('./list-plugins.ts')).listPlugins());
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
}
