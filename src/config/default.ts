// The embedded default configuration: what `peripety agent` runs without
// --config. The kmsg and udev collectors, every parser, and a stdout receiver.
import { PARSER_NAMES } from '../parsers/options.ts';

export const DEFAULT_CONFIG_TOML = `# peripety agent — embedded default configuration
[main]
receiver_bind_ip = "127.0.0.1"
receiver_multicast_ip = "239.0.0.1"
receiver_multicast_port = "6000"

[kmsg]
type = "collector"
start = "resume"

# block devices added, removed, changed (netlink uevents; docs/udev.md)
[udev]
type = "collector"

${PARSER_NAMES.map((p) => `[${p}]\ntype = "parser"\n`).join('\n')}
[stdout]
type = "receiver"
format = "text"
`;
