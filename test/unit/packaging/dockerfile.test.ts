// The container image, checked without a container engine (none runs on the
// project's machines): the Dockerfile and .dockerignore against the
// repository (dockerfile.ts models what each stage holds). The real
// Dockerfile must break no rule; each broken variant below must be caught,
// so the checks are known to fail when they should.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { checkImage, type CheckInput, DockerIgnore, fsRepo, importsOf, parseDockerfile, type Repo, repoRoot, runtimeClosure } from './dockerfile.ts';
import { readFileSync } from 'node:fs';
import path from 'node:path';

const read = (p: string) => readFileSync(path.join(repoRoot, p), 'utf8');
const repo = fsRepo();
const real: CheckInput = { dockerfile: read('Dockerfile'), dockerignore: read('.dockerignore'), hackRun: read('hack/run'), repo };

/** The real inputs with the Dockerfile edited (each edit must apply: a stale edit would test nothing). */
function withDockerfile(edit: (s: string) => string): CheckInput {
  const dockerfile = edit(real.dockerfile);
  assert.notEqual(dockerfile, real.dockerfile, 'the edit changed nothing: the test is stale');
  return { ...real, dockerfile };
}
const replace = (from: string | RegExp, to: string) => (s: string) => s.replace(from, to);
/** Replace the last occurrence (the runtime stage's copy of a line both stages have). */
const replaceLast = (from: string, to: string) => (s: string) => {
  const i = s.lastIndexOf(from);
  return i < 0 ? s : s.slice(0, i) + to + s.slice(i + from.length);
};

function expectProblem(input: CheckInput, want: RegExp): void {
  const problems = checkImage(input);
  assert.ok(problems.some((p) => want.test(p)), `expected a problem matching ${want}, got:\n  ${problems.join('\n  ') || '(none)'}`);
}

describe('Dockerfile and .dockerignore (static)', () => {
  it('the real Dockerfile breaks no rule', () => {
    const problems = checkImage(real);
    assert.deepEqual(problems, []);
  });

  it('parses stages, flags, both instruction forms and continued lines', () => {
    const df = parseDockerfile(real.dockerfile);
    assert.ok(df.stages.length >= 2);
    const final = df.stages[df.stages.length - 1]!;
    const ep = final.instructions.find((i) => i.cmd === 'ENTRYPOINT');
    assert.deepEqual(ep?.args.slice(0, 1), ['node']);
    assert.equal(ep?.exec, true);
    const copyFrom = final.instructions.filter((i) => i.cmd === 'COPY' && i.flags.from !== undefined);
    assert.ok(copyFrom.length >= 2, 'the runtime stage copies node_modules and the addons from the build stage');
    const t = parseDockerfile('# syntax=docker/dockerfile:1\nARG V=1\nFROM x:${V} AS a\nRUN --mount=type=cache,target=/c \\\n  # comment\n  echo a \\\n  && echo b\n');
    assert.equal(t.stages[0]!.base, 'x:1');
    assert.deepEqual(t.stages[0]!.instructions[0]!.flags, { mount: 'type=cache,target=/c' });
    assert.match(t.stages[0]!.instructions[0]!.text, /^echo a\s+&& echo b$/);
  });

  it('the base images are build arguments: a plain build gets the official tags, hack/image.sh its stand-ins', () => {
    const plain = parseDockerfile(real.dockerfile);
    const nodeVersion = /^NODE_VERSION=(\S+)/m.exec(real.hackRun)![1]!;
    const release = plain.globalArgs.DEBIAN_RELEASE!;
    assert.equal(release, 'bookworm');
    assert.deepEqual(plain.stages.map((s) => `${s.name} ${s.base}`), [`build node:${nodeVersion}-${release}`, `runtime node:${nodeVersion}-${release}-slim`]);
    const fromLines = real.dockerfile.split('\n').filter((l) => l.startsWith('FROM '));
    assert.deepEqual(fromLines, ['FROM ${BUILD_IMAGE} AS build', 'FROM ${RUNTIME_IMAGE} AS runtime']);
    const local = parseDockerfile(real.dockerfile, { BUILD_IMAGE: 'peripety.local/node:x-bookworm', RUNTIME_IMAGE: 'peripety.local/node:x-bookworm-slim' });
    assert.deepEqual(local.stages.map((s) => s.base), ['peripety.local/node:x-bookworm', 'peripety.local/node:x-bookworm-slim']);
    // an override of an ARG another default uses reaches it
    assert.equal(parseDockerfile(real.dockerfile, { DEBIAN_RELEASE: 'trixie' }).stages[1]!.base, `node:${nodeVersion}-trixie-slim`);
    const t = parseDockerfile('ARG A=1\nARG B=x:${A}-$A\nARG C\nFROM ${B}${C} AS s\n');
    assert.equal(t.stages[0]!.base, 'x:1-1');
  });

  it('hack/image.sh passes the stand-ins as those build arguments and keys the image on every COPY source', () => {
    const script = read('hack/image.sh');
    const declared = Object.keys(parseDockerfile(real.dockerfile).globalArgs);
    for (const arg of ['BUILD_IMAGE', 'RUNTIME_IMAGE']) {
      assert.ok(declared.includes(arg), `the Dockerfile declares ARG ${arg} before the first FROM`);
      assert.match(script, new RegExp(`--build-arg "${arg}=\\$`), `hack/image.sh passes --build-arg ${arg}`);
    }
    assert.match(script, /--pull=never/);
    assert.doesNotMatch(script, /--network[= ](?!host\b)/, 'builds use the host network only (a bridge network writes host iptables)');
    // the content key hashes the files named on the `find` line: every context COPY source must be under one
    const find = /^\s*find (.*?) -type f/m.exec(script);
    assert.ok(find, 'the key\'s find line');
    const keyed = find[1]!.split(/\s+/);
    const df = parseDockerfile(real.dockerfile);
    for (const ins of df.stages.flatMap((s) => s.instructions)) {
      if (ins.cmd !== 'COPY' || ins.flags.from !== undefined) continue;
      for (const src of ins.args.slice(0, -1)) {
        const p = src.replace(/\/+$/, '');
        assert.ok(keyed.some((k) => p === k || p.startsWith(`${k}/`)), `COPY source ${src} (line ${ins.line}) is not in the image key of hack/image.sh`);
      }
    }
  });

  it('.dockerignore: allow-list, exceptions, ** and parent directories like Docker', () => {
    const ig = new DockerIgnore(real.dockerignore);
    for (const p of ['package.json', 'package-lock.json', 'bin/peripety', 'src/cli/peripety.ts', 'src/native/peripety_native.c', 'hack/build-native.mjs']) {
      assert.equal(ig.excludes(p), false, `${p} must be in the context`);
    }
    for (const p of ['node_modules/zod/package.json', 'build/peripety_native.node', '.tools/x', '.git/HEAD', 'test/root/faults.test.ts',
      'hack/run', 'docs/envtest.md', 'charts/peripety/Chart.yaml', 'README.md', 'Dockerfile']) {
      assert.equal(ig.excludes(p), true, `${p} must stay out of the context`);
    }
    const t = new DockerIgnore('*\n!keep/\nkeep/**/secret*\n!keep/a/secret-ok\n');
    assert.equal(t.excludes('x/y'), true);
    assert.equal(t.excludes('keep/z'), false);
    assert.equal(t.excludes('keep/a/b/secret.txt'), true);
    assert.equal(t.excludes('keep/secret.txt'), true, '**/ matches zero directories');
    assert.equal(t.excludes('keep/a/secret-ok'), false, 'the last matching rule wins');
  });

  it('every file the entry points load is in the repository, and reaches the image', () => {
    const pkg = JSON.parse(read('package.json')) as { bin: Record<string, string> };
    const closure = runtimeClosure(repo, Object.values(pkg.bin));
    assert.deepEqual(closure.unresolved, []);
    assert.ok(closure.files.length > 50, `only ${closure.files.length} files reached from ${Object.values(pkg.bin).join(', ')}: import scanning is broken`);
    assert.ok(closure.files.includes('src/native/index.ts'));
    assert.ok(closure.files.includes('src/cli/controller.ts'), 'the dynamic import of the controller is followed');
    assert.ok(closure.files.includes('src/cli/agent.ts'), 'the dynamic import of the agent command is followed');
    assert.deepEqual([...closure.packages.keys()].sort(), ['pg', 'pino', 'prom-client', 'smol-toml', 'yaml', 'zod']);
    console.log(`# ${closure.files.length} files and ${closure.packages.size} packages loaded at run time`);
  });

  it('import scanning: type-only statements are erased, `{ type X }` imports stay, dynamic imports count', () => {
    const refs = importsOf(`import type { A } from 'dev-only';\nimport { type B } from 'kept';\nexport type { C } from './c.ts';\n/* import x from 'comment' */\nconst m = await import('./lazy.ts');\nimport {\n  a,\n  b as c,\n} from './multi.ts';\nimport './side.ts';\n`);
    assert.deepEqual(refs.map((r) => `${r.spec}${r.typeOnly ? ' (type)' : ''}`).sort(),
      ['./c.ts (type)', './lazy.ts', './multi.ts', './side.ts', 'dev-only (type)', 'kept'].sort());
  });

  describe('broken variants are caught', () => {
    it('devDependencies in the runtime (npm ci without --omit=dev)', () => {
      expectProblem(withDockerfile(replace('npm ci --omit=dev', 'npm ci')), /installs devDependencies/);
      expectProblem(withDockerfile(replace('npm ci --omit=dev', 'npm ci')), /runtime: .*node_modules comes from an npm run .* devDependencies/);
    });
    it('npm install instead of npm ci', () => {
      expectProblem(withDockerfile(replace('npm ci --omit=dev', 'npm install --omit=dev')), /use npm ci/);
    });
    it('the install script or the C sources not copied before npm ci', () => {
      expectProblem(withDockerfile(replace(/^COPY hack\/build-native\.mjs.*$/m, '')), /hack\/build-native\.mjs is not in \/app before npm runs/);
      expectProblem(withDockerfile(replace(/^COPY src\/native\/ src\/native\/$/m, '')), /src\/native\/peripety_native\.c is not in \/app before npm runs/);
    });
    it('a COPY source that does not exist, or that .dockerignore leaves out', () => {
      expectProblem(withDockerfile(replace('COPY bin/ bin/', 'COPY bin/ bin/\nCOPY lib/ lib/')), /source lib\/ does not exist/);
      expectProblem(withDockerfile(replace('COPY bin/ bin/', 'COPY bin/ bin/\nCOPY hack/run hack/run')), /source hack\/run is excluded by \.dockerignore/);
      expectProblem({ ...real, dockerignore: real.dockerignore.replace('!src/\n', '') }, /every file under src is excluded|src\/cli\/peripety\.ts \(loaded at run time\) is not at/);
    });
    it('code the entry point loads is missing from the runtime stage', () => {
      // the runtime stage's COPY of src/ (the build stage has one too, for hack/build-dist.mjs)
      expectProblem(withDockerfile(replaceLast('COPY src/ src/', 'COPY src/cli/ src/cli/')), /src\/agent\/agent\.ts \(loaded at run time\) is not at \/app\/src\/agent\/agent\.ts/);
      expectProblem(withDockerfile(replace(/^COPY --from=build \/app\/dist\/ dist\/$/m, 'COPY --from=build /app/build/ dist/')), /./);
      expectProblem(withDockerfile(replace(/^COPY hack\/build-dist\.mjs .*$/m, '')), /hack\/build-dist\.mjs runs without hack\/build-dist\.mjs/);
      expectProblem(withDockerfile(replaceLast('COPY package.json package-lock.json ./', 'COPY package-lock.json ./')), /no package\.json at \/app/);
    });
    it('the addons are not copied from the build stage', () => {
      expectProblem(withDockerfile(replace(/^COPY --from=build \/app\/build\/ build\/$/m, '')), /\/app\/build\/peripety_native\.node \(the addon of src\/native\/peripety_native\.c\) is not in the image/);
    });
    it('a runtime import of a devDependency', () => {
      const pkg = JSON.parse(read('package.json')) as { dependencies: Record<string, string>; devDependencies: Record<string, string> };
      const { yaml, ...rest } = pkg.dependencies;
      const moved = JSON.stringify({ ...pkg, dependencies: rest, devDependencies: { ...pkg.devDependencies, yaml } });
      const fake: Repo = { ...repo, read: (p) => (p === 'package.json' ? moved : repo.read(p)) };
      expectProblem({ ...real, repo: fake }, /imports yaml, which is not in package\.json's dependencies \(it is a devDependency/);
    });
    it('the entry point: wrong file, shell form, missing', () => {
      expectProblem(withDockerfile(replace('"/app/bin/peripety"', '"/app/bin/prpt"')), /ENTRYPOINT script is bin\/prpt/);
      expectProblem(withDockerfile(replace('"/app/bin/peripety"', '"/app/bin/peripety.ts"')), /ENTRYPOINT script \/app\/bin\/peripety\.ts is not in the image/);
      expectProblem(withDockerfile(replace(/^ENTRYPOINT .*$/m, 'ENTRYPOINT node /app/bin/peripety')), /shell form/);
      expectProblem(withDockerfile(replace(/^ENTRYPOINT .*$/m, '')), /no ENTRYPOINT/);
    });
    it('the Node version differs from hack/run, or the stages from each other', () => {
      expectProblem(withDockerfile(replace(/^ARG NODE_VERSION=.*$/m, 'ARG NODE_VERSION=22.20.0')), /Node major 22 .* hack\/run needs 24/);
      expectProblem(withDockerfile(replace(/^ARG NODE_VERSION=.*$/m, 'ARG NODE_VERSION=24.1.0')), /hack\/run pins NODE_VERSION=/);
      expectProblem({ ...real, hackRun: real.hackRun.replace(/^NODE_VERSION=.*$/m, 'NODE_VERSION=24.99.0') }, /hack\/run pins NODE_VERSION=24\.99\.0/);
      expectProblem(withDockerfile(replace('-${DEBIAN_RELEASE}-slim', '-trixie-slim')), /different Debian releases/);
      expectProblem(withDockerfile(replace('-${DEBIAN_RELEASE}-slim\n', '-${DEBIAN_RELEASE}\n')), /is not a -slim image/);
    });
    it('the final user is root, a name, or missing', () => {
      expectProblem(withDockerfile(replace(/^USER .*$/m, 'USER 0')), /USER 0 is root/);
      expectProblem(withDockerfile(replace(/^USER .*$/m, 'USER root')), /USER root is not numeric/);
      expectProblem(withDockerfile(replace(/^USER .*$/m, 'USER node')), /USER node is not numeric/);
      expectProblem(withDockerfile(replace(/^USER .*$/m, '')), /no USER: the image runs as root/);
    });
    it('.dockerignore lets node_modules, build or the tests into the context', () => {
      expectProblem({ ...real, dockerignore: '' }, /node_modules\/zod\/package\.json would be sent/);
      expectProblem({ ...real, dockerignore: real.dockerignore.replace('**/build\n', '') + '!build/\n' }, /build\/peripety_native\.node would be sent/);
      expectProblem({ ...real, dockerignore: `${real.dockerignore}!test/\n` }, /test\/unit\/bus\.test\.ts would be sent/);
    });
  });
});
