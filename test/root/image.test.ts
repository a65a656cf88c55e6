// The real peripety image, built with podman from local stand-ins by
// hack/image.sh (no image registry: see docs/packaging.md "The image without
// a registry"), run the way the Helm chart runs it: the agent as root with the
// chart's capabilities and a read-only root file system reading the real
// /dev/kmsg, the controller as the chart's non-root user with a read-only
// root file system; and the real agent with the chart's [main], volume mounts
// and unprivileged securityContext. The security settings are read from
// `helm template` output, so this follows the chart. Also: nothing of the build's CA or
// npmrc is left in the image or its history, and the runtime has no compiler.
//
// Needs root (podman's rootful store, /dev/kmsg); skipped loudly otherwise.
// The first run on a machine builds the stand-ins and the image (a few
// minutes, in the before hook); later runs find it cached.
import assert from 'node:assert/strict';
import { spawn, spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import { helmBinary, HELM_BUILD_TIMEOUT_MS, one, template } from '../chart/helm.ts';
import { asConfigMap, asWorkload, type Container, type SecurityContext, type Workload } from '../chart/k8s-types.ts';
import { isRoot } from '../helpers/faults.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const IMAGE_SH = path.join(ROOT, 'hack/image.sh');
const BUILD_TIMEOUT_MS = 30 * 60_000;
const version = (JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;

function sh(args: string[], timeoutMs = 120_000): SpawnSyncReturns<string> {
  return spawnSync(IMAGE_SH, args, { cwd: ROOT, encoding: 'utf8', timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 });
}
function podman(args: string[], timeoutMs = 120_000): SpawnSyncReturns<string> {
  return sh(['podman', ...args], timeoutMs);
}
function show(r: SpawnSyncReturns<string>): string {
  return `exit ${r.status}${r.signal ? ` (${r.signal})` : ''}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`;
}

/** The podman flags that give a container what the pod + container securityContext give it on a kubelet. */
function podmanSecurity(pod: SecurityContext | undefined, c: Container): string[] {
  const sc: SecurityContext = { ...pod, ...c.securityContext };
  const flags: string[] = [];
  if (sc.runAsUser !== undefined) flags.push('--user', `${sc.runAsUser}:${sc.runAsGroup ?? sc.runAsUser}`);
  if (sc.privileged) flags.push('--privileged');
  if (sc.allowPrivilegeEscalation === false) flags.push('--security-opt', 'no-new-privileges');
  for (const cap of sc.capabilities?.drop ?? []) flags.push(`--cap-drop=${cap.toLowerCase()}`);
  for (const cap of sc.capabilities?.add ?? []) flags.push(`--cap-add=${cap}`);
  // a kubelet mounts no tmpfs anywhere on a read-only root (podman would on /tmp, /run, /var/tmp)
  if (sc.readOnlyRootFilesystem) flags.push('--read-only', '--read-only-tmpfs=false');
  return flags;
}

/** Reads the first record of /dev/kmsg and prints it (the agent's reader opens it the same way). */
const READ_KMSG = `
const fs = require('node:fs');
const fd = fs.openSync('/dev/kmsg', 'r');
const buf = Buffer.alloc(8192);
const n = fs.readSync(fd, buf, 0, buf.length, null);
process.stdout.write(buf.subarray(0, n).toString('utf8').split('\\n')[0] + '\\n');
`;

describe('the peripety image (podman, hack/image.sh)', { concurrency: false }, () => {
  let image = '';
  let agent: Workload;
  let agentUnprivileged: Workload;
  let controller: Workload;
  let agentToml = '';

  before(async () => {
    if (!isRoot()) return;
    const t0 = Date.now();
    const r = sh([], BUILD_TIMEOUT_MS);
    assert.equal(r.status, 0, `hack/image.sh failed:\n${show(r)}`);
    const lines = r.stdout.trim().split('\n');
    assert.equal(lines.length, 1, `hack/image.sh prints one line (the reference):\n${r.stdout}`);
    image = lines[0]!;
    assert.match(image, /^peripety\.local\/peripety:[0-9a-f]{24}$/);
    console.log(`# ${image} ready in ${Date.now() - t0} ms`);
    await helmBinary();
    const objs = await template();
    agent = asWorkload(one(objs, 'DaemonSet'));
    agentToml = asConfigMap(one(objs, 'ConfigMap', 'peripety-agent')).data['agent.toml']!;
    controller = asWorkload(one(objs, 'Deployment'));
    agentUnprivileged = asWorkload(one(await template({ set: ['agent.kmsgDeviceResource=smarter-devices/kmsg'] }), 'DaemonSet'));
  }, { timeout: BUILD_TIMEOUT_MS + HELM_BUILD_TIMEOUT_MS });

  it('hack/image.sh --check finds it built, and a second run builds nothing', (t) => {
    if (!isRoot()) return skip(t);
    const c = sh(['--check']);
    assert.equal(c.status, 0, show(c));
    assert.equal(c.stdout.trim(), image);
    const again = sh([]);
    assert.equal(again.status, 0, show(again));
    assert.equal(again.stdout.trim(), image);
    assert.match(again.stderr, /cached/);
  });

  it('--archive writes a docker-archive of that image (for `ctr images import`) and prints its path', (t) => {
    if (!isRoot()) return skip(t);
    const r = sh(['--archive'], 10 * 60_000);
    assert.equal(r.status, 0, show(r));
    const [ref, archive, ...rest] = r.stdout.trim().split('\n');
    assert.equal(ref, image);
    assert.deepEqual(rest, []);
    assert.ok(archive && existsSync(archive), `archive ${archive}`);
    const manifest = spawnSync('tar', ['-xOf', archive, 'manifest.json'], { encoding: 'utf8', maxBuffer: 16 * 1024 * 1024 });
    assert.equal(manifest.status, 0, manifest.stderr);
    const m = JSON.parse(manifest.stdout) as { RepoTags?: string[] }[];
    assert.deepEqual(m.map((x) => x.RepoTags), [[image]]);
  });

  it('the stand-ins look like the official images: user node is 1000:1000, only the full one has a compiler', (t) => {
    if (!isRoot()) return skip(t);
    const nodeVersion = /^NODE_VERSION=(\S+)/m.exec(readFileSync(path.join(ROOT, 'hack/run'), 'utf8'))![1]!;
    const release = /^ARG DEBIAN_RELEASE=(\S+)/m.exec(readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8'))![1]!;
    for (const [tag, compiler] of [[`${nodeVersion}-${release}-slim`, false], [`${nodeVersion}-${release}`, true]] as const) {
      const r = podman(['run', '--rm', '--network=none', `peripety.local/node:${tag}`, 'sh', '-c',
        'id node; node --version; npm --version >/dev/null && echo npm; command -v cc >/dev/null && echo cc || true']);
      assert.equal(r.status, 0, show(r));
      const want = ['uid=1000(node) gid=1000(node) groups=1000(node)', `v${nodeVersion}`, 'npm', ...(compiler ? ['cc'] : [])];
      assert.deepEqual(r.stdout.trim().split('\n'), want, `peripety.local/node:${tag}`);
    }
  });

  it('runs with no network: --version and print-default-config', (t) => {
    if (!isRoot()) return skip(t);
    const v = podman(['run', '--rm', '--network=none', image, '--version']);
    assert.equal(v.status, 0, show(v));
    assert.equal(v.stdout.trim(), `peripety ${version}`);
    const cfg = podman(['run', '--rm', '--network=none', image, 'print-default-config']);
    assert.equal(cfg.status, 0, show(cfg));
    assert.match(cfg.stdout, /\[main\]/);
  });

  it('runs as uid/gid 1000, with no compiler and nothing of the build\'s CA or npmrc', (t) => {
    if (!isRoot()) return skip(t);
    const user = podman(['image', 'inspect', '--format', '{{.Config.User}}', image]);
    assert.equal(user.status, 0, show(user));
    assert.equal(user.stdout.trim(), '1000:1000');
    const id = podman(['run', '--rm', '--network=none', '--entrypoint=id', image]);
    assert.equal(id.stdout.trim().split(' ').slice(0, 2).join(' '), 'uid=1000(node) gid=1000(node)', show(id));
    const files = podman(['run', '--rm', '--network=none', '--entrypoint=sh', image, '-c',
      'for f in /usr/local/etc/npmrc /usr/local/etc/peripety-build-ca.crt /root/.npmrc /app/.npmrc; do test ! -e $f || echo "left: $f"; done;'
      + ' for c in cc gcc clang make; do command -v $c && echo "compiler: $c"; done; ls -A /usr/local/etc; true']);
    assert.equal(files.status, 0, show(files));
    assert.equal(files.stdout.trim(), '', `the runtime image holds:\n${files.stdout}`);
    const history = podman(['history', '--no-trunc', '--format', '{{.CreatedBy}}', image]);
    assert.equal(history.status, 0, show(history));
    assert.doesNotMatch(history.stdout, /cafile|npmrc|peripety-build-ca|NODE_EXTRA_CA_CERTS/i);
    const env = podman(['image', 'inspect', '--format', '{{json .Config.Env}}', image]);
    assert.doesNotMatch(env.stdout, /CA_CERT|npm_config_cafile/i);
  });

  for (const mode of ['unprivileged (kmsgDeviceResource: only CAP_SYSLOG)', 'privileged (the default)'] as const) {
    it(`the agent reads /dev/kmsg with the chart's securityContext: ${mode}`, (t) => {
      if (!isRoot()) return skip(t);
      const ds = mode.startsWith('unprivileged') ? agentUnprivileged : agent;
      const spec = ds.spec.template.spec;
      const c = spec.containers.find((x) => x.name === 'agent')!;
      const flags = podmanSecurity(spec.securityContext, c);
      assert.ok(flags.includes('--read-only'), 'the chart gives the agent a read-only root');
      assert.ok(flags.includes('--user') && flags[flags.indexOf('--user') + 1] === '0:0', `the chart runs the agent as root: ${flags.join(' ')}`);
      // the device plugin hands over the device; privileged mode mounts it (hostPath, read-only)
      const device = mode.startsWith('unprivileged') ? ['--device', '/dev/kmsg:/dev/kmsg:r'] : ['-v', '/dev/kmsg:/dev/kmsg:ro'];
      const r = podman(['run', '--rm', '--network=none', ...flags, ...device, '--entrypoint=node', image, '-e', READ_KMSG]);
      assert.equal(r.status, 0, `${flags.join(' ')}\n${show(r)}`);
      assert.match(r.stdout, /^\d+,\d+,\d+,[^;]*;/, `a kmsg record: ${r.stdout}`);
      console.log(`# ${mode}: ${flags.join(' ')} → ${r.stdout.trim().slice(0, 60)}`);
    });
  }

  it('the real agent runs with the chart\'s unprivileged securityContext, mounts and [main]: reads /dev/kmsg, writes only its state directory, drains on SIGTERM', async (t) => {
    if (!isRoot()) return skip(t);
    const spec = agentUnprivileged.spec.template.spec;
    const c = spec.containers.find((x) => x.name === 'agent')!;
    const dir = mkdtempSync(path.join(os.tmpdir(), 'prpt-image-agent-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    // the chart's [main] (the ConfigMap) + what the controller would push: kmsg → block parser → stdout
    mkdirSync(path.join(dir, 'config'));
    writeFileSync(path.join(dir, 'config/agent.toml'), `${agentToml}\n[kmsg]\ntype = "collector"\nstart = "beginning"\n[block]\ntype = "parser"\n[out]\ntype = "receiver"\nplugin = "stdout"\nformat = "json"\n`);
    // each volume mount of the chart: hostPaths as they are, except the state directory and /run/udev (temp dirs)
    const mounts: string[] = [];
    for (const m of c.volumeMounts ?? []) {
      const v = spec.volumes!.find((x) => x.name === m.name)!;
      let src = v.hostPath?.path;
      if (v.configMap) src = path.join(dir, 'config');
      else if (v.hostPath?.type === 'DirectoryOrCreate') mkdirSync(src = path.join(dir, m.name));
      assert.ok(src, `volume ${m.name}`);
      mounts.push('-v', `${src}:${m.mountPath}${m.readOnly ? ':ro' : ''}`);
    }
    const args = (c.args ?? []).filter((a) => a === 'agent' || a.startsWith('--config='));
    assert.deepEqual(args, ['agent', '--config=/etc/peripety/agent.toml']);
    const name = `prpt-image-agent-${process.pid}`;
    const flags = [...podmanSecurity(spec.securityContext, c), ...(spec.hostPID ? ['--pid=host'] : []), '--device', '/dev/kmsg:/dev/kmsg:r'];
    const proc = spawn(IMAGE_SH, ['podman', 'run', '--rm', '--name', name, '--network=none', '-e', 'NODE_NAME=image-test-node', ...flags, ...mounts, image, ...args],
      { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    proc.stdout.on('data', (b: Buffer) => { out += b.toString(); });
    proc.stderr.on('data', (b: Buffer) => { err += b.toString(); });
    const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
    try {
      const deadline = Date.now() + 60_000;
      while (!/"msg":"agent started"/.test(err) && Date.now() < deadline && proc.exitCode === null) await new Promise((r) => setTimeout(r, 200));
      assert.match(err, /"msg":"agent started"/, `the agent did not start:\n${err}`);
      await new Promise((r) => setTimeout(r, 2000));
    } finally {
      // asynchronously: the agent's output keeps flowing into this process while it drains
      await new Promise((resolve) => spawn(IMAGE_SH, ['podman', 'stop', '-t', '20', name], { cwd: ROOT, stdio: 'ignore' }).on('exit', resolve));
    }
    const code = await exited;
    assert.equal(code, 0, `exit ${code}\n${err}`);
    assert.match(err, /"msg":"agent stopped"/);
    assert.doesNotMatch(err, /EROFS|EACCES|EPERM|read-only file system/i, err);
    assert.ok(existsSync(path.join(dir, 'state', 'kmsg.position.json')), 'the read position is saved in the state directory');
    const events = out.split('\n').filter((l) => l.startsWith('{'));
    console.log(`# the agent in the image: ${events.length} events from the kernel ring; ${flags.join(' ')}`);
  });

  it('without CAP_SYSLOG the agent could not read /dev/kmsg (so the check above means something)', (t) => {
    if (!isRoot()) return skip(t);
    if (readFileSync('/proc/sys/kernel/dmesg_restrict', 'utf8').trim() !== '1') return t.skip('kernel.dmesg_restrict=0 here: any process may read /dev/kmsg');
    const spec = agentUnprivileged.spec.template.spec;
    const c = structuredClone(spec.containers.find((x) => x.name === 'agent')!);
    c.securityContext!.capabilities!.add = [];
    const r = podman(['run', '--rm', '--network=none', ...podmanSecurity(spec.securityContext, c), '--device', '/dev/kmsg:/dev/kmsg:r',
      '--entrypoint=node', image, '-e', READ_KMSG]);
    assert.notEqual(r.status, 0, show(r));
    assert.match(r.stderr, /EPERM|operation not permitted/i);
  });

  it('the controller starts as the chart\'s non-root user on a read-only root, and fails only for want of a cluster', (t) => {
    if (!isRoot()) return skip(t);
    const spec = controller.spec.template.spec;
    const c = spec.containers.find((x) => x.name === 'controller') ?? spec.containers[0]!;
    const flags = podmanSecurity(spec.securityContext, c);
    assert.ok(flags.includes('--read-only'));
    const user = flags[flags.indexOf('--user') + 1]!;
    assert.ok(spec.securityContext?.runAsNonRoot && !user.startsWith('0:'), `non-root: ${user}`);
    const env = (c.env ?? []).filter((e) => e.value !== undefined).flatMap((e) => ['-e', `${e.name}=${e.value}`]);
    const r = podman(['run', '--rm', '--network=none', ...flags, ...env, image, ...(c.args ?? [])]);
    assert.equal(r.status, 1, show(r));
    assert.match(r.stderr, /not in a cluster \(KUBERNETES_SERVICE_HOST is not set\)/, show(r));
    assert.doesNotMatch(r.stdout + r.stderr, /EROFS|EACCES|read-only file system|permission denied/i);
  });
});

function skip(t: { name: string; skip: (m: string) => void }): void {
  process.stderr.write(`*** SKIPPED (needs root): ${t.name}: podman's rootful store and /dev/kmsg ***\n`);
  t.skip('NOT ROOT: podman\'s rootful store and /dev/kmsg');
}
