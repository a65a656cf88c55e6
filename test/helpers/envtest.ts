// A real Kubernetes API server for tests (envtest-style): etcd and
// kube-apiserver, no kubelet, no controllers, no mocks.
//
//   const env = await startEnvtest();        // builds the binaries on first use
//   env.kubeconfigAdmin                       // file: client cert in system:masters
//   env.kubeconfigController / kubeconfigAgent // files: ServiceAccount tokens
//   await env.kubeconfigFor({ user: 'alice', groups: ['devs'] })
//   await env.request('GET', '/readyz')       // node:https as admin (or another identity)
//   await env.stop();
//
// The binaries come from hack/envtest-build.sh (pinned versions built from
// their Go modules and cached outside the repository, or KUBEBUILDER_ASSETS /
// TEST_ASSET_* when set): the first run on a machine builds them, which takes
// a long while (docs/envtest.md), so callers give their `before` hook a long
// timeout (ENVTEST_BUILD_TIMEOUT_MS).
//
// Each server lives in its own temp directory with throwaway certificates
// made by openssl: a CA, a serving cert for 127.0.0.1/localhost, client certs
// (admin in system:masters, and any user asked for) and an RSA
// service-account signing key; the apiserver accepts the audiences
// [server URL, 'peripety-agent']. ServiceAccount identities get their token
// from the TokenRequest API. CRDs from crds/ (or crdsDir) are applied with
// the built kubectl and waited for until Established.
//
// stop() kills both process groups and removes the temp directory; whatever
// a test forgets (or a crash leaves) is killed at process exit and on
// SIGINT/SIGTERM/SIGHUP.
import { type ChildProcess, execFile, execFileSync, spawn } from 'node:child_process';
import { appendFileSync, closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { mkdtemp, writeFile } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { atExit } from './exit.ts';

const repoRoot = path.resolve(import.meta.dirname, '../..');
const BUILD_SCRIPT = path.join(repoRoot, 'hack/envtest-build.sh');

/** Timeout for a `before` hook that may have to build the binaries first (cold build on 2 cores: see docs/envtest.md). */
export const ENVTEST_BUILD_TIMEOUT_MS = 90 * 60_000;
/** The namespace of the built-in controller and agent ServiceAccounts. */
export const ENVTEST_NAMESPACE = 'peripety-system';
/** The extra audience the apiserver accepts (agents present such tokens to the controller, which TokenReviews them). */
export const AGENT_AUDIENCE = 'peripety-agent';

/** A Pod a ServiceAccount token is bound to (TokenRequest boundObjectRef): the token then carries the Pod's node (authentication.kubernetes.io/node-name). */
export interface BoundPod {
  name: string;
  uid: string;
}

export type EnvtestIdentity =
  | { serviceAccount: string; namespace?: string; audiences?: string[]; expirationSeconds?: number; boundPod?: BoundPod }
  | { user: string; groups?: string[] };

type Credentials = { cert: string; key: string } | { token: string };

export interface HttpResult<T = unknown> {
  status: number;
  body: T;
  text: string;
}

export interface Envtest {
  /** https://127.0.0.1:<port> */
  readonly server: string;
  /** PEM of the throwaway CA that signed the serving and client certs */
  readonly caData: string;
  /** kubeconfig file: client cert CN=peripety-envtest-admin, O=system:masters */
  readonly kubeconfigAdmin: string;
  /** kubeconfig file: token of ServiceAccount peripety-system/peripety-controller (no RBAC bindings: tests grant what they need) */
  readonly kubeconfigController: string;
  /**
   * kubeconfig file: token of ServiceAccount peripety-system/peripety-agent (no RBAC bindings), not bound to a
   * Pod, so without a node name: the chart's admission policies refuse its Lease and Event writes (a node's
   * agent identity: agentKubeconfig in test/helpers/operator.ts)
   */
  readonly kubeconfigAgent: string;
  /** directory holding kube-apiserver, etcd, kubectl */
  readonly binDir: string;
  /** the temp directory of this instance (certs, kubeconfigs, etcd data, logs) */
  readonly dir: string;
  /** names of the CRDs installed from crdsDir, all Established */
  readonly crds: string[];
  /** milliseconds: binaries (0 when cached), etcd ready, apiserver ready, CRDs established, identities */
  readonly timings: Record<'binaries' | 'etcd' | 'apiserver' | 'crds' | 'identities', number>;
  /** A kubeconfig file for a ServiceAccount (created, with its namespace, when missing; token by TokenRequest) or a user (client cert). */
  kubeconfigFor(id: EnvtestIdentity): Promise<string>;
  /**
   * A ServiceAccount token from the TokenRequest API (namespace and ServiceAccount are created when missing).
   * Audiences default to [server] (like an in-cluster token for the API server); pass [AGENT_AUDIENCE] for an agent's token to the controller.
   */
  token(namespace: string, serviceAccount: string, opts?: { audiences?: string[]; expirationSeconds?: number; boundPod?: BoundPod }): Promise<string>;
  /** One API request with node:https; as admin unless `kubeconfig` names one made by this instance. JSON in and out. */
  request<T = unknown>(method: string, urlPath: string, body?: unknown, opts?: { kubeconfig?: string; contentType?: string }): Promise<HttpResult<T>>;
  /** Run the pinned kubectl (admin kubeconfig unless given); resolves with stdout. */
  kubectl(args: string[], opts?: { kubeconfig?: string; input?: string }): Promise<string>;
  /** Last lines of a process's log, for failure messages. */
  logTail(which: 'etcd' | 'kube-apiserver', lines?: number): string;
  /** Kill both servers and remove the temp directory. Idempotent. */
  stop(): Promise<void>;
}

export interface StartEnvtestOptions {
  /** Directory of CRD YAML files to install (default: the repository's crds/); false installs none. */
  crdsDir?: string | false;
  /** Extra kube-apiserver flags (`--name=value`). */
  apiserverArgs?: string[];
  /** Progress lines (default: to stderr). */
  log?: (line: string) => void;
}


// ---------------------------------------------------------------------------
// binaries

let binariesPromise: Promise<{ dir: string; ms: number }> | undefined;

/**
 * The directory with kube-apiserver, etcd and kubectl: runs
 * hack/envtest-build.sh once per process (it prints the cached directory
 * at once, or builds first). Its progress goes to stderr, without the
 * hundreds of "go: downloading" lines.
 */
export function ensureEnvtestBinaries(log: (line: string) => void = defaultLog): Promise<{ dir: string; ms: number }> {
  binariesPromise ??= new Promise((resolve, reject) => {
    const t0 = Date.now();
    const child = spawn('bash', [BUILD_SCRIPT], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let errTail: string[] = [];
    let downloads = 0;
    let partial = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      const lines = (partial + d).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) {
        errTail = [...errTail.slice(-40), line];
        if (line.startsWith('go: downloading')) downloads++;
        else log(line);
      }
    });
    child.on('error', reject);
    child.on('close', (code) => {
      if (downloads > 0) log(`envtest: the build downloaded ${downloads} Go modules`);
      const dir = out.trim().split('\n').pop() ?? '';
      if (code !== 0 || !dir) {
        binariesPromise = undefined;
        reject(new Error(`hack/envtest-build.sh failed (exit ${code}):\n${errTail.join('\n')}`));
        return;
      }
      for (const b of ['kube-apiserver', 'etcd', 'kubectl']) {
        if (!existsSync(path.join(dir, b))) {
          reject(new Error(`hack/envtest-build.sh printed ${dir}, which has no ${b}`));
          return;
        }
      }
      resolve({ dir, ms: Date.now() - t0 });
    });
  });
  return binariesPromise;
}

function defaultLog(line: string): void {
  process.stderr.write(`${line}\n`);
}

// ---------------------------------------------------------------------------
// PKI with openssl (the same layout as hack/envtest.sh)

/** one extension section per kind of certificate (shared with hack/envtest.sh) */
const OPENSSL_CNF = path.join(repoRoot, 'hack/envtest-openssl.cnf');

function openssl(args: string[]): void {
  try {
    execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (e) {
    const err = e as NodeJS.ErrnoException & { stderr?: Buffer };
    if (err.code === 'ENOENT') throw new Error('openssl not found: install Debian package "openssl" (hack/ci-deps.sh)');
    throw new Error(`openssl ${args.join(' ')} failed: ${err.stderr?.toString() ?? err.message}`);
  }
}

const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];

/** Escape a value for an openssl -subj string. */
function subjPart(s: string): string {
  return s.replace(/[\\/=+,]/g, (c) => `\\${c}`);
}

function makeClientCert(pki: string, name: string, cn: string, groups: string[]): { cert: string; key: string } {
  const subj = [...groups.map((g) => `/O=${subjPart(g)}`), `/CN=${subjPart(cn)}`].join('');
  const key = path.join(pki, `${name}.key`);
  const cert = path.join(pki, `${name}.crt`);
  openssl(['req', '-x509', '-new', '-config', OPENSSL_CNF, '-extensions', 'client', ...EC,
    '-keyout', key, '-subj', subj, '-CA', path.join(pki, 'ca.crt'), '-CAkey', path.join(pki, 'ca.key'), '-days', '2', '-out', cert]);
  return { cert: readFileSync(cert, 'utf8'), key: readFileSync(key, 'utf8') };
}

async function makePki(pki: string): Promise<void> {
  mkdirSync(pki, { recursive: true, mode: 0o700 });
  const cnf = ['-config', OPENSSL_CNF];
  const ca = ['-CA', path.join(pki, 'ca.crt'), '-CAkey', path.join(pki, 'ca.key')];
  openssl(['req', '-x509', '-new', ...cnf, '-extensions', 'ca', ...EC, '-keyout', path.join(pki, 'ca.key'),
    '-subj', '/CN=peripety-envtest-ca', '-days', '2', '-out', path.join(pki, 'ca.crt')]);
  openssl(['req', '-x509', '-new', ...cnf, '-extensions', 'server', ...EC, '-keyout', path.join(pki, 'server.key'),
    '-subj', '/CN=localhost', ...ca, '-days', '2', '-out', path.join(pki, 'server.crt')]);
  openssl(['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', path.join(pki, 'sa.key')]);
  openssl(['pkey', '-in', path.join(pki, 'sa.key'), '-pubout', '-out', path.join(pki, 'sa.pub')]);
}

// ---------------------------------------------------------------------------
// kubeconfig files

function b64(s: string): string {
  return Buffer.from(s).toString('base64');
}

function kubeconfigText(server: string, caPem: string, user: string, cred: Credentials): string {
  const userLines = 'token' in cred
    ? `    token: ${cred.token}\n`
    : `    client-certificate-data: ${b64(cred.cert)}\n    client-key-data: ${b64(cred.key)}\n`;
  return `apiVersion: v1
kind: Config
clusters:
- name: envtest
  cluster:
    server: ${server}
    certificate-authority-data: ${b64(caPem)}
users:
- name: ${JSON.stringify(user)}
  user:
${userLines}contexts:
- name: envtest
  context:
    cluster: envtest
    user: ${JSON.stringify(user)}
current-context: envtest
`;
}

// ---------------------------------------------------------------------------
// small helpers

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.unref();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const addr = s.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      s.close(() => resolve(port));
    });
  });
}

function tail(file: string, lines = 30): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

interface Daemon {
  name: 'etcd' | 'kube-apiserver';
  proc: ChildProcess;
  logFile: string;
  exited: boolean;
  exitInfo: string;
  exitPromise: Promise<void>;
}

function startDaemon(name: Daemon['name'], bin: string, args: string[], logFile: string): Daemon {
  const fd = openSync(logFile, 'a');
  // detached: its own process group, so stop() can kill the group.
  const proc = spawn(bin, args, { detached: true, stdio: ['ignore', fd, fd] });
  closeSync(fd);
  proc.unref(); // a forgotten stop() must not keep the test process alive: the exit handler kills it
  const d: Daemon = { name, proc, logFile, exited: false, exitInfo: '', exitPromise: Promise.resolve() };
  d.exitPromise = new Promise((resolve) => {
    proc.on('exit', (code, signal) => {
      d.exited = true;
      d.exitInfo = signal ? `signal ${signal}` : `exit ${code}`;
      resolve();
    });
    proc.on('error', (e) => {
      d.exited = true;
      d.exitInfo = e.message;
      resolve();
    });
  });
  return d;
}

function killGroupSync(d: Daemon, sig: NodeJS.Signals): void {
  if (d.exited || d.proc.pid === undefined) return;
  try {
    process.kill(-d.proc.pid, sig);
  } catch {
    try {
      d.proc.kill(sig);
    } catch {
      // already gone
    }
  }
}

async function stopDaemon(d: Daemon): Promise<void> {
  if (d.exited) return;
  killGroupSync(d, 'SIGTERM');
  const done = await Promise.race([d.exitPromise.then(() => true), sleep(10_000, undefined, { ref: false }).then(() => false)]);
  if (!done) {
    killGroupSync(d, 'SIGKILL');
    await d.exitPromise;
  }
}

const WATCHDOG = `parent=$1 dir=$2
while kill -0 "$parent" 2>/dev/null; do sleep 2; done
if [ -f "$dir/pgids" ]; then
  for g in $(tac "$dir/pgids"); do kill -KILL -- "-$g" 2>/dev/null; done
fi
rm -rf "$dir"`;

function httpGet(url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { timeout: 2000 }, (res) => {
      let s = '';
      res.setEncoding('utf8').on('data', (c: string) => (s += c)).on('end', () => resolve(s));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

function httpsRequest(server: string, caPem: string, cred: Credentials, method: string, urlPath: string, body: string | undefined, contentType: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const u = new URL(urlPath, server);
    const headers: Record<string, string> = { Accept: 'application/json' };
    if (body !== undefined) {
      headers['Content-Type'] = contentType;
      headers['Content-Length'] = String(Buffer.byteLength(body));
    }
    if ('token' in cred) headers.Authorization = `Bearer ${cred.token}`;
    const req = https.request({
      hostname: u.hostname,
      port: u.port,
      path: u.pathname + u.search,
      method,
      headers,
      ca: caPem,
      ...('cert' in cred ? { cert: cred.cert, key: cred.key } : {}),
      timeout: 30_000,
      agent: false,
    }, (res) => {
      let s = '';
      res.setEncoding('utf8').on('data', (c: string) => (s += c)).on('end', () => resolve({ status: res.statusCode ?? 0, text: s }));
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${urlPath}: timeout`)));
    req.on('error', reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

function crdFiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir).filter((f) => /\.ya?ml$/.test(f)).sort().map((f) => path.join(dir, f));
}

interface CrdStatus {
  status?: { conditions?: { type: string; status: string; reason?: string; message?: string }[] };
}

// ---------------------------------------------------------------------------

/** Start etcd + kube-apiserver in a fresh temp directory. See the file comment. */
export async function startEnvtest(opts: StartEnvtestOptions = {}): Promise<Envtest> {
  const log = opts.log ?? defaultLog;
  const bins = await ensureEnvtestBinaries(log);
  const binDir = bins.dir;
  const dir = await mkdtemp(path.join(os.tmpdir(), 'peripety-envtest-'));
  const pki = path.join(dir, 'pki');
  const daemons: Daemon[] = [];
  let stopped = false;
  const unregister = atExit(() => {
    for (const d of [...daemons].reverse()) killGroupSync(d, 'SIGKILL');
    watchdog.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });
  // For the one exit no handler sees (SIGKILL, e.g. a runner's hard timeout):
  // a detached shell that ends the servers and the directory once this
  // process is gone. It reads the process groups from <dir>/pgids.
  const watchdog = spawn('bash', ['-c', WATCHDOG, 'envtest-watchdog', String(process.pid), dir],
    { detached: true, stdio: 'ignore' });
  watchdog.unref();
  const track = (d: Daemon): void => {
    daemons.push(d);
    if (d.proc.pid !== undefined) appendFileSync(path.join(dir, 'pgids'), `${d.proc.pid}\n`);
  };

  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    for (const d of [...daemons].reverse()) await stopDaemon(d);
    watchdog.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
    unregister();
  };

  try {
    const timings = { binaries: bins.ms, etcd: 0, apiserver: 0, crds: 0, identities: 0 };
    await makePki(pki);
    const caData = readFileSync(path.join(pki, 'ca.crt'), 'utf8');
    const adminCred = makeClientCert(pki, 'admin', 'peripety-envtest-admin', ['system:masters']);

    // etcd: a port race with another process makes it exit at once; retry on fresh ports.
    let t0 = Date.now();
    let etcdUrl = '';
    for (let attempt = 1; ; attempt++) {
      const clientPort = await freePort();
      const peerPort = await freePort();
      const d = startDaemon('etcd', path.join(binDir, 'etcd'), [
        '--name=envtest',
        `--data-dir=${path.join(dir, 'etcd')}`,
        `--listen-client-urls=http://127.0.0.1:${clientPort}`,
        `--advertise-client-urls=http://127.0.0.1:${clientPort}`,
        `--listen-peer-urls=http://127.0.0.1:${peerPort}`,
        `--initial-advertise-peer-urls=http://127.0.0.1:${peerPort}`,
        `--initial-cluster=envtest=http://127.0.0.1:${peerPort}`,
        '--unsafe-no-fsync',
        '--log-level=warn',
      ], path.join(dir, 'etcd.log'));
      track(d);
      const url = `http://127.0.0.1:${clientPort}`;
      const deadline = Date.now() + 30_000;
      while (!d.exited && Date.now() < deadline) {
        try {
          if ((await httpGet(`${url}/health`)).includes('"health":"true"')) break;
        } catch {
          // not yet listening
        }
        await sleep(100);
      }
      if (!d.exited && Date.now() < deadline) {
        etcdUrl = url;
        break;
      }
      await stopDaemon(d);
      daemons.pop();
      if (attempt >= 3 || !/address already in use/.test(tail(d.logFile, 50))) {
        throw new Error(`etcd did not become healthy (${d.exitInfo || 'timeout 30 s'}):\n${tail(d.logFile)}`);
      }
      rmSync(path.join(dir, 'etcd'), { recursive: true, force: true });
    }
    timings.etcd = Date.now() - t0;

    // kube-apiserver
    t0 = Date.now();
    let server = '';
    for (let attempt = 1; ; attempt++) {
      const port = await freePort();
      const url = `https://127.0.0.1:${port}`;
      const d = startDaemon('kube-apiserver', path.join(binDir, 'kube-apiserver'), [
        '--bind-address=127.0.0.1',
        '--advertise-address=127.0.0.1',
        `--secure-port=${port}`,
        `--tls-cert-file=${path.join(pki, 'server.crt')}`,
        `--tls-private-key-file=${path.join(pki, 'server.key')}`,
        `--client-ca-file=${path.join(pki, 'ca.crt')}`,
        `--etcd-servers=${etcdUrl}`,
        '--service-cluster-ip-range=10.0.0.0/24',
        '--allow-privileged=true',
        '--authorization-mode=RBAC',
        `--service-account-issuer=${url}`,
        `--service-account-key-file=${path.join(pki, 'sa.pub')}`,
        `--service-account-signing-key-file=${path.join(pki, 'sa.key')}`,
        `--api-audiences=${url},${AGENT_AUDIENCE}`,
        '--disable-admission-plugins=ServiceAccount',
        '--endpoint-reconciler-type=none',
        `--cert-dir=${path.join(dir, 'apiserver-certs')}`,
        ...(opts.apiserverArgs ?? []),
      ], path.join(dir, 'kube-apiserver.log'));
      track(d);
      const deadline = Date.now() + 90_000;
      let last = '';
      let ready = false;
      while (!d.exited && Date.now() < deadline) {
        try {
          const r = await httpsRequest(url, caData, adminCred, 'GET', '/readyz', undefined, '');
          last = `${r.status} ${r.text.slice(0, 200)}`;
          if (r.status === 200 && r.text === 'ok') {
            ready = true;
            break;
          }
        } catch (e) {
          last = (e as Error).message;
        }
        await sleep(200);
      }
      if (ready) {
        server = url;
        break;
      }
      await stopDaemon(d);
      daemons.pop();
      if (attempt >= 3 || !/address already in use/.test(tail(d.logFile, 50))) {
        throw new Error(`kube-apiserver did not become ready (${d.exitInfo || `timeout 90 s, last /readyz: ${last}`}):\n${tail(d.logFile)}`);
      }
    }
    timings.apiserver = Date.now() - t0;

    const kubeconfigAdmin = path.join(dir, 'admin.kubeconfig');
    await writeFile(kubeconfigAdmin, kubeconfigText(server, caData, 'admin', adminCred), { mode: 0o600 });
    const creds = new Map<string, Credentials>([[kubeconfigAdmin, adminCred]]);

    const request = async <T = unknown>(method: string, urlPath: string, body?: unknown, ro: { kubeconfig?: string; contentType?: string } = {}): Promise<HttpResult<T>> => {
      const cred = creds.get(ro.kubeconfig ?? kubeconfigAdmin);
      if (!cred) throw new Error(`request: ${ro.kubeconfig} is not a kubeconfig of this envtest`);
      const text = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body);
      const r = await httpsRequest(server, caData, cred, method, urlPath, text, ro.contentType ?? 'application/json');
      let parsed: unknown = r.text;
      try {
        parsed = JSON.parse(r.text);
      } catch {
        // not JSON (e.g. /readyz)
      }
      return { status: r.status, text: r.text, body: parsed as T };
    };
    const must = async <T = unknown>(method: string, urlPath: string, body?: unknown, okAlso: number[] = []): Promise<HttpResult<T>> => {
      const r = await request<T>(method, urlPath, body);
      if ((r.status < 200 || r.status > 299) && !okAlso.includes(r.status)) throw new Error(`${method} ${urlPath}: HTTP ${r.status}: ${r.text.slice(0, 500)}`);
      return r;
    };

    const kubectl = (args: string[], ko: { kubeconfig?: string; input?: string } = {}): Promise<string> =>
      new Promise((resolve, reject) => {
        const child = execFile(path.join(binDir, 'kubectl'), [`--kubeconfig=${ko.kubeconfig ?? kubeconfigAdmin}`, ...args],
          { maxBuffer: 64 << 20, timeout: 120_000 }, (err, stdout, stderr) => {
            if (err) reject(new Error(`kubectl ${args.join(' ')}: ${err.message}\n${stderr}`));
            else resolve(stdout);
          });
        if (ko.input !== undefined) child.stdin?.end(ko.input);
        else child.stdin?.end();
      });

    // CRDs
    t0 = Date.now();
    const crds: string[] = [];
    const crdsDir = opts.crdsDir === undefined ? path.join(repoRoot, 'crds') : opts.crdsDir;
    const files = crdsDir === false ? [] : crdFiles(crdsDir);
    if (files.length > 0) {
      const out = await kubectl(['apply', '--server-side', '--force-conflicts', '--field-manager=peripety-envtest', '-o', 'name', ...files.flatMap((f) => ['-f', f])]);
      for (const line of out.split('\n')) {
        const m = /^customresourcedefinition\.apiextensions\.k8s\.io\/(.+)$/.exec(line.trim());
        if (m?.[1]) crds.push(m[1]);
      }
      const deadline = Date.now() + 60_000;
      for (const name of crds) {
        for (;;) {
          const r = await must<CrdStatus>('GET', `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${name}`);
          const conds = r.body.status?.conditions ?? [];
          if (conds.some((c) => c.type === 'Established' && c.status === 'True')) break;
          if (Date.now() > deadline) throw new Error(`CRD ${name} not Established after 60 s: ${JSON.stringify(conds)}`);
          await sleep(100);
        }
      }
    }
    timings.crds = Date.now() - t0;

    // identities
    t0 = Date.now();
    const ensureNamespace = async (ns: string): Promise<void> => {
      await must('POST', '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } }, [409]);
    };
    const ensureServiceAccount = async (ns: string, sa: string): Promise<void> => {
      await ensureNamespace(ns);
      await must('POST', `/api/v1/namespaces/${ns}/serviceaccounts`, { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: sa, namespace: ns } }, [409]);
    };
    const token = async (ns: string, sa: string, to: { audiences?: string[]; expirationSeconds?: number; boundPod?: BoundPod } = {}): Promise<string> => {
      await ensureServiceAccount(ns, sa);
      const r = await must<{ status?: { token?: string } }>('POST', `/api/v1/namespaces/${ns}/serviceaccounts/${sa}/token`, {
        apiVersion: 'authentication.k8s.io/v1',
        kind: 'TokenRequest',
        spec: {
          audiences: to.audiences ?? [server], expirationSeconds: to.expirationSeconds ?? 3600,
          ...(to.boundPod ? { boundObjectRef: { kind: 'Pod', apiVersion: 'v1', name: to.boundPod.name, uid: to.boundPod.uid } } : {}),
        },
      });
      const tok = r.body.status?.token;
      if (!tok) throw new Error(`TokenRequest for ${ns}/${sa} returned no token: ${r.text.slice(0, 300)}`);
      return tok;
    };
    let userSeq = 0;
    const kubeconfigFor = async (id: EnvtestIdentity): Promise<string> => {
      let cred: Credentials;
      let name: string;
      if ('serviceAccount' in id) {
        const ns = id.namespace ?? ENVTEST_NAMESPACE;
        cred = { token: await token(ns, id.serviceAccount, { audiences: id.audiences ?? [server], expirationSeconds: id.expirationSeconds ?? 3600, boundPod: id.boundPod }) };
        name = `sa-${ns}-${id.serviceAccount}${id.boundPod ? `-${id.boundPod.name}` : ''}`;
      } else {
        name = `user-${id.user.replace(/[^A-Za-z0-9_.-]/g, '_')}`;
        cred = makeClientCert(pki, `${name}-${++userSeq}`, id.user, id.groups ?? []);
      }
      let file = path.join(dir, `${name}.kubeconfig`);
      for (let i = 2; creds.has(file); i++) file = path.join(dir, `${name}-${i}.kubeconfig`);
      const userName = 'serviceAccount' in id ? `system:serviceaccount:${id.namespace ?? ENVTEST_NAMESPACE}:${id.serviceAccount}` : id.user;
      await writeFile(file, kubeconfigText(server, caData, userName, cred), { mode: 0o600 });
      creds.set(file, cred);
      return file;
    };
    const kubeconfigController = await kubeconfigFor({ serviceAccount: 'peripety-controller' });
    const kubeconfigAgent = await kubeconfigFor({ serviceAccount: 'peripety-agent' });
    timings.identities = Date.now() - t0;

    return {
      server,
      caData,
      kubeconfigAdmin,
      kubeconfigController,
      kubeconfigAgent,
      binDir,
      dir,
      crds,
      timings,
      kubeconfigFor,
      token,
      request,
      kubectl,
      logTail: (which, lines = 30) => tail(path.join(dir, `${which}.log`), lines),
      stop,
    };
  } catch (e) {
    await stop();
    throw e;
  }
}
