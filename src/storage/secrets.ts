// The agent's Secret resolver for storage backends (BackendContext.secret).
//
// In Kubernetes mode the CLI (src/cli/peripety.ts) registers one resolver
// for the process, bound to the agent's KubeClient and namespace
// (src/k8s/secrets.ts); every StorageManager the agent starts hands it to its
// backends. Standalone, none is registered and a backend that needs a Secret
// says so. A StorageHost given `secrets` explicitly uses that instead.
import type { SecretResolver } from './types.ts';

let registered: SecretResolver | undefined;

/** Set (or with undefined, clear) the process's Secret resolver. */
export function registerSecretResolver(resolver: SecretResolver | undefined): void {
  registered = resolver;
}

/** The process's Secret resolver, if the agent runs in Kubernetes mode. */
export function registeredSecretResolver(): SecretResolver | undefined {
  return registered;
}
