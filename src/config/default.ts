// The embedded default configuration: what `peripety agent` runs without
// --config. The kmsg collector, every parser, and a stdout receiver.
import { PARSER_NAMES } from '../parsers/index.ts';

export const DEFAULT_CONFIG_TOML = `# peripety agent — embedded default configuration
[main]
receiver_bind_ip = "127.0.0.1"
receiver_multicast_ip = "239.0.0.1"
receiver_multicast_port = "6000"

[kmsg]
type = "collector"
start = "resume"

${PARSER_NAMES.map((p) => `[${p}]\ntype = "parser"\n`).join('\n')}
[stdout]
type = "receiver"
format = "text"
`;
