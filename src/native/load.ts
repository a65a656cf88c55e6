// The loading the four addon loaders (index.ts, netlink.ts, unixdgram.ts, udp.ts)
// share: each src/native/<name>.c is built by `npm ci` (hack/build-native.mjs)
// into build/<name>.node.
import { createRequire } from 'node:module';
import path from 'node:path';

const requireAddon = createRequire(import.meta.url);

/**
 * A function returning the addon build/<name>.node, loaded on its first call.
 * A missing or broken build throws an Error naming `what` ("the netlink
 * addon"), the file and how to build it.
 */
export function addonLoader<T>(name: string, what: string): () => T {
  const file = path.resolve(import.meta.dirname, `../../build/${name}.node`);
  let cached: T | null = null;
  return () => {
    if (cached) return cached;
    try {
      cached = requireAddon(file) as T;
      return cached;
    } catch (err) {
      throw new Error(`${what} is missing or broken (${file}): run "npm ci" or "node hack/build-native.mjs" (needs a C compiler): ${(err as Error).message}`);
    }
  };
}
