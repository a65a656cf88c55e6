// One exit-time safety net for test fixtures that own processes or temp
// directories (PostgreSQL clusters, envtest servers): registered cleanups run
// synchronously on exit and on SIGINT/SIGTERM/SIGHUP, even when a test failed.
const pendingAtExit = new Set<() => void>();
let hooksInstalled = false;

function runPendingSync(): void {
  for (const f of pendingAtExit) {
    try {
      f();
    } catch {
      // best effort
    }
  }
  pendingAtExit.clear();
}

/** Register a synchronous cleanup; returns the function that unregisters it. */
export function atExit(fn: () => void): () => void {
  if (!hooksInstalled) {
    hooksInstalled = true;
    process.on('exit', runPendingSync);
    for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
      // Clean up, then die of the same signal as we would have without this handler.
      process.once(sig, () => {
        runPendingSync();
        process.kill(process.pid, sig);
      });
    }
  }
  pendingAtExit.add(fn);
  return () => pendingAtExit.delete(fn);
}
