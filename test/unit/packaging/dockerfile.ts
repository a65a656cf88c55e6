// A static model of the Dockerfile and .dockerignore, for the checks of
// dockerfile.test.ts and the Docker-less image build of image-build.test.ts.
// No container engine runs on the project's machines, so what can be known
// without building is checked here:
//
// - parseDockerfile: instructions (line continuations, comments, exec/shell
//   forms, --flags), stages, global ARG substitution in FROM (ARG defaults
//   that use earlier ARGs, --build-arg overrides);
// - DockerIgnore: the .dockerignore rules (moby/patternmatcher semantics:
//   `*`, `?`, `**`, `!` exceptions, last match wins, a pattern matching a
//   parent directory matches the file);
// - imageModel: which files each stage holds and where they come from (the
//   build context, an addon compiled by `npm ci`'s install script, the
//   node_modules of an `npm ci` with or without --omit=dev), following COPY,
//   COPY --from, WORKDIR and the `npm ci` RUNs;
// - checkImage: every rule the image must keep, as a list of problems (empty
//   when all hold), so that tests can feed it broken Dockerfiles too.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';

export const repoRoot = path.resolve(import.meta.dirname, '../../..');

// ---------------------------------------------------------------------------
// Dockerfile parsing

export interface Instruction {
  /** upper case: FROM, COPY, RUN, … */
  cmd: string;
  /** --name=value flags (COPY --from, RUN --mount, …) */
  flags: Record<string, string>;
  /** the arguments after the flags: the exec form's array, or the shell form split on blanks */
  args: string[];
  /** true for the JSON (exec) form */
  exec: boolean;
  /** the text after the command and flags, as written (continuations joined) */
  text: string;
  /** 1-based line of the instruction's start */
  line: number;
}

export interface Stage {
  index: number;
  name: string | undefined;
  /** the FROM image with ARGs substituted */
  base: string;
  instructions: Instruction[];
}

export interface Dockerfile {
  /** ARGs declared before the first FROM, with their defaults */
  globalArgs: Record<string, string>;
  stages: Stage[];
}

function splitFlags(rest: string): { flags: Record<string, string>; text: string } {
  const flags: Record<string, string> = {};
  let text = rest.trimStart();
  for (;;) {
    const m = /^--([a-z-]+)(?:=(\S*))?\s+/.exec(text);
    if (!m) break;
    flags[m[1]!] = m[2] ?? 'true';
    text = text.slice(m[0].length);
  }
  return { flags, text: text.trim() };
}

function substitute(s: string, vars: Record<string, string>): string {
  return s.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)/g, (_m, a: string | undefined, b: string | undefined) => vars[a ?? b ?? ''] ?? '');
}

/**
 * Parse a Dockerfile. `buildArgs` are `--build-arg` values: like Docker, they
 * replace the default of an ARG declared before the first FROM, and each
 * global ARG's default may use the ARGs declared before it.
 */
export function parseDockerfile(src: string, buildArgs: Record<string, string> = {}): Dockerfile {
  const lines = src.split('\n');
  const logical: { text: string; line: number }[] = [];
  let buf = '';
  let start = 0;
  let inDirectives = true;
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i]!;
    const t = raw.trim();
    if (!buf) {
      if (t === '' || t.startsWith('#')) {
        if (inDirectives && /^#\s*\w+\s*=/.test(t)) continue; // parser directive (# syntax=…)
        continue;
      }
      inDirectives = false;
      start = i + 1;
    } else if (t.startsWith('#')) {
      continue; // comment lines inside a continued instruction are dropped, as Docker does
    }
    if (/\\\s*$/.test(raw)) {
      buf += `${raw.replace(/\\\s*$/, '')} `;
      continue;
    }
    buf += raw;
    logical.push({ text: buf.trim(), line: start });
    buf = '';
  }
  if (buf) logical.push({ text: buf.trim(), line: start });

  const globalArgs: Record<string, string> = {};
  const stages: Stage[] = [];
  for (const { text, line } of logical) {
    const m = /^(\S+)\s*(.*)$/s.exec(text);
    if (!m) continue;
    const cmd = m[1]!.toUpperCase();
    const { flags, text: rest } = splitFlags(m[2] ?? '');
    let args: string[];
    let exec = false;
    if (rest.startsWith('[')) {
      try {
        const parsed: unknown = JSON.parse(rest);
        if (Array.isArray(parsed) && parsed.every((x) => typeof x === 'string')) {
          args = parsed as string[];
          exec = true;
        } else {
          args = rest.split(/\s+/);
        }
      } catch {
        args = rest.split(/\s+/);
      }
    } else {
      args = rest === '' ? [] : rest.split(/\s+/);
    }
    const ins: Instruction = { cmd, flags, args, exec, text: rest, line };
    if (cmd === 'ARG' && stages.length === 0) {
      const decl = args[0] ?? '';
      const eq = decl.indexOf('=');
      const k = eq < 0 ? decl : decl.slice(0, eq);
      if (k) globalArgs[k] = buildArgs[k] ?? (eq < 0 ? '' : substitute(decl.slice(eq + 1), globalArgs));
      continue;
    }
    if (cmd === 'FROM') {
      const asIdx = args.findIndex((a) => a.toUpperCase() === 'AS');
      stages.push({ index: stages.length, name: asIdx >= 0 ? args[asIdx + 1] : undefined, base: substitute(args[0] ?? '', globalArgs), instructions: [] });
      continue;
    }
    const stage = stages[stages.length - 1];
    if (stage) stage.instructions.push(ins);
  }
  return { globalArgs, stages };
}

// ---------------------------------------------------------------------------
// .dockerignore

interface IgnoreRule { re: RegExp; exception: boolean; pattern: string }

function globToRegExp(pattern: string): RegExp {
  let re = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '*') {
      if (pattern[i + 1] === '*') {
        i++;
        if (pattern[i + 1] === '/') {
          i++;
          re += '(?:.*/)?';
        } else {
          re += '.*';
        }
      } else {
        re += '[^/]*';
      }
    } else if (c === '?') {
      re += '[^/]';
    } else {
      re += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
    }
  }
  return new RegExp(`^${re}$`);
}

export class DockerIgnore {
  readonly rules: IgnoreRule[];

  constructor(text: string) {
    this.rules = [];
    for (const raw of text.split('\n')) {
      let p = raw.trim();
      if (!p || p.startsWith('#')) continue;
      const exception = p.startsWith('!');
      if (exception) p = p.slice(1).trim();
      p = path.posix.normalize(p).replace(/^\/+/, '').replace(/\/+$/, '');
      if (p === '.' || p === '') continue;
      this.rules.push({ re: globToRegExp(p), exception, pattern: raw.trim() });
    }
  }

  /** Is this context path (relative, `/`-separated) left out of the build context? */
  excludes(file: string): boolean {
    const f = path.posix.normalize(file).replace(/^\/+/, '').replace(/\/+$/, '');
    const parts = f.split('/');
    const candidates = parts.map((_, i) => parts.slice(0, i + 1).join('/')).reverse(); // the file first, then its parents
    let excluded = false;
    for (const r of this.rules) {
      if (candidates.some((c) => r.re.test(c))) excluded = !r.exception;
    }
    return excluded;
  }
}

// ---------------------------------------------------------------------------
// The repository (the build context)

export interface Repo {
  exists(p: string): boolean;
  isDir(p: string): boolean;
  /** every file under a directory, relative to the repository, `/`-separated */
  filesUnder(dir: string): string[];
  read(p: string): string;
}

export function fsRepo(root = repoRoot): Repo {
  const abs = (p: string) => path.join(root, p);
  return {
    exists: (p) => existsSync(abs(p)),
    isDir: (p) => existsSync(abs(p)) && statSync(abs(p)).isDirectory(),
    filesUnder: (dir) => {
      const out: string[] = [];
      const walk = (d: string) => {
        for (const e of readdirSync(abs(d), { withFileTypes: true })) {
          const rel = d === '.' || d === '' ? e.name : `${d}/${e.name}`;
          if (e.isDirectory()) {
            if (e.name === 'node_modules' || e.name === '.git') continue;
            walk(rel);
          } else {
            out.push(rel);
          }
        }
      };
      walk(dir.replace(/\/+$/, '') || '.');
      return out.sort();
    },
    read: (p) => readFileSync(abs(p), 'utf8'),
  };
}

/** Context paths a COPY source names (a file, a directory, or a `*`/`?` glob in the last part). */
export function expandSource(repo: Repo, source: string): string[] {
  const s = path.posix.normalize(source).replace(/^\.?\/+/, '').replace(/\/+$/, '');
  if (s === '.' || s === '') return ['.'];
  if (!/[*?[]/.test(s)) return repo.exists(s) ? [s] : [];
  const dir = path.posix.dirname(s);
  if (/[*?[]/.test(dir) || !repo.isDir(dir)) return [];
  const re = globToRegExp(path.posix.basename(s));
  const base = dir === '.' ? '' : `${dir}/`;
  return repo.filesUnder(dir).map((f) => f.slice(base.length)).filter((f) => !f.includes('/') && re.test(f)).map((f) => base + f);
}

// ---------------------------------------------------------------------------
// The image model

export type Origin =
  | { kind: 'context'; repoPath: string }
  | { kind: 'addon'; name: string }
  | { kind: 'node_modules'; omitDev: boolean; stage: string }
  /** dist/, compiled from src/ by hack/build-dist.mjs in that stage */
  | { kind: 'dist'; stage: string };

export interface StageModel {
  stage: Stage;
  /** image path → where it comes from; a node_modules entry stands for the whole directory */
  files: Map<string, Origin>;
  /** WORKDIR at the end of the stage */
  workdir: string;
  /** user at the end of the stage ('' = never set: root) */
  user: string;
  /** `npm ci` / `npm install` RUNs: their text and what the stage held just before */
  npmRuns: { text: string; line: number; workdir: string; before: Set<string>; omitDev: boolean }[];
  problems: string[];
}

const stageKey = (s: Stage) => s.name ?? String(s.index);

/** Follow each stage's instructions: what lands where. */
export function imageModel(df: Dockerfile, ignore: DockerIgnore, repo: Repo): StageModel[] {
  const models: StageModel[] = [];
  const pkg = JSON.parse(repo.read('package.json')) as { scripts?: Record<string, string> };
  for (const stage of df.stages) {
    const inherited = models.find((m) => stageKey(m.stage) === stage.base);
    const files = new Map<string, Origin>(inherited ? inherited.files : []);
    const m: StageModel = {
      stage, files, workdir: inherited?.workdir ?? '/', user: inherited?.user ?? '', npmRuns: [], problems: [],
    };
    for (const ins of stage.instructions) {
      const where = `line ${ins.line} (${ins.cmd} ${ins.text})`;
      if (ins.cmd === 'WORKDIR') {
        m.workdir = path.posix.resolve(m.workdir, ins.args[0] ?? '/');
      } else if (ins.cmd === 'USER') {
        m.user = ins.args[0] ?? '';
      } else if (ins.cmd === 'COPY' || ins.cmd === 'ADD') {
        if (ins.cmd === 'ADD') m.problems.push(`${where}: use COPY (ADD fetches URLs and unpacks archives)`);
        const sources = ins.args.slice(0, -1);
        const destRaw = ins.args[ins.args.length - 1] ?? '';
        if (sources.length === 0) {
          m.problems.push(`${where}: no source`);
          continue;
        }
        const dest = path.posix.resolve(m.workdir, destRaw);
        const destIsDir = destRaw.endsWith('/') || sources.length > 1;
        const from = ins.flags.from;
        if (from !== undefined) {
          const src = models.find((x) => stageKey(x.stage) === from);
          if (!src) {
            m.problems.push(`${where}: --from=${from} names no earlier stage`);
            continue;
          }
          for (const s of sources) {
            const abs = path.posix.resolve(src.workdir, s).replace(/\/+$/, '') || '/';
            let any = false;
            for (const [p, o] of src.files) {
              if (p === abs) {
                files.set(destIsDir && !isDirEntry(o) ? `${dest}/${path.posix.basename(p)}` : dest, o);
                any = true;
              } else if (p.startsWith(`${abs}/`)) {
                files.set(`${dest}/${p.slice(abs.length + 1)}`, o);
                any = true;
              }
            }
            if (!any) m.problems.push(`${where}: stage ${from} has nothing at ${abs}`);
          }
          continue;
        }
        for (const s of sources) {
          const matched = expandSource(repo, s);
          if (matched.length === 0) {
            m.problems.push(`${where}: source ${s} does not exist in the repository`);
            continue;
          }
          for (const p of matched) {
            if (p === '.' || repo.isDir(p)) {
              const all = p === '.' ? repo.filesUnder('.') : repo.filesUnder(p);
              const kept = all.filter((f) => !ignore.excludes(f));
              if (kept.length === 0) m.problems.push(`${where}: every file under ${p} is excluded by .dockerignore`);
              for (const f of kept) files.set(`${dest}/${p === '.' ? f : f.slice(p.length + 1)}`, { kind: 'context', repoPath: f });
            } else if (ignore.excludes(p)) {
              m.problems.push(`${where}: source ${p} is excluded by .dockerignore`);
            } else {
              files.set(destIsDir ? `${dest}/${path.posix.basename(p)}` : dest, { kind: 'context', repoPath: p });
            }
          }
        }
      } else if (ins.cmd === 'RUN') {
        const text = ins.exec ? ins.args.join(' ') : ins.text;
        // hack/build-dist.mjs compiles the stage's src/ into dist/: it needs itself, its helpers and src/ there
        if (/\bnode\s+hack\/build-dist\.mjs\b/.test(text)) {
          const need = ['hack/build-dist.mjs', 'hack/lib/dist-rewrite.mjs', 'bin/entry.mjs', 'src/cli/peripety.ts'];
          const missing = need.filter((f) => !files.has(`${m.workdir}/${f}`));
          if (missing.length > 0) m.problems.push(`${where}: hack/build-dist.mjs runs without ${missing.join(', ')} in ${m.workdir}`);
          else files.set(`${m.workdir}/dist`, { kind: 'dist', stage: stageKey(stage) });
        }
        for (const npm of text.matchAll(/\bnpm\s+(ci|install|i)\b([^&;|]*)/g)) {
          const omitDev = /--omit[= ]dev\b/.test(npm[2] ?? '');
          const before = new Set(files.keys());
          m.npmRuns.push({ text: npm[0].trim(), line: ins.line, workdir: m.workdir, before, omitDev });
          files.set(`${m.workdir}/node_modules`, { kind: 'node_modules', omitDev, stage: stageKey(stage) });
          // the package's install script (hack/build-native.mjs) compiles each src/native/<name>.c
          const install = pkg.scripts?.install ?? '';
          const script = /^node\s+(\S+)$/.exec(install)?.[1];
          if (/--ignore-scripts\b/.test(npm[2] ?? '') || !script || !files.has(`${m.workdir}/${script}`)) continue;
          for (const [p, o] of [...files]) {
            const c = new RegExp(`^${escapeRe(m.workdir)}/src/native/([^/]+)\\.c$`).exec(p);
            if (c && o.kind === 'context') files.set(`${m.workdir}/build/${c[1]}.node`, { kind: 'addon', name: c[1]! });
          }
        }
      }
    }
    models.push(m);
  }
  return models;
}

function isDirEntry(o: Origin): boolean {
  return o.kind === 'node_modules' || o.kind === 'dist';
}

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

// ---------------------------------------------------------------------------
// Imports of the code that runs in the image

interface ImportRef { spec: string; typeOnly: boolean }

/** Static and dynamic imports of a TypeScript/JavaScript file (whole-statement `import type` is erased by Node). */
export function importsOf(code: string): ImportRef[] {
  const out: ImportRef[] = [];
  const noComments = code.replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '');
  const stmt = /(?:^|[;\n])\s*(import|export)\s+(type\s+)?(?:[\w*{}\s,$]+?\s+from\s+)?['"]([^'"\n]+)['"]/g;
  for (const m of noComments.matchAll(stmt)) out.push({ spec: m[3]!, typeOnly: m[2] !== undefined });
  for (const m of noComments.matchAll(/\bimport\(\s*['"]([^'"\n]+)['"]\s*\)/g)) out.push({ spec: m[1]!, typeOnly: false });
  return out;
}

/** The package name of a bare specifier (`@scope/name/sub` → `@scope/name`). */
export function packageName(spec: string): string {
  const parts = spec.split('/');
  return spec.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]!;
}

export interface Closure {
  /** repository files reached from the entry points (relative paths) */
  files: string[];
  /** bare packages imported at run time, with one importer each */
  packages: Map<string, string>;
  /** relative imports that resolve to no file */
  unresolved: string[];
}

/** Every file and package the entry points load at run time (relative imports followed, type-only imports skipped). */
export function runtimeClosure(repo: Repo, entries: string[]): Closure {
  const seen = new Set<string>();
  const packages = new Map<string, string>();
  const unresolved: string[] = [];
  const todo = [...entries];
  while (todo.length > 0) {
    const f = todo.pop()!;
    if (seen.has(f)) continue;
    seen.add(f);
    for (const { spec, typeOnly } of importsOf(repo.read(f))) {
      if (typeOnly || spec.startsWith('node:')) continue;
      if (spec.startsWith('.')) {
        const target = path.posix.normalize(path.posix.join(path.posix.dirname(f), spec));
        if (repo.exists(target) && !repo.isDir(target)) todo.push(target);
        else unresolved.push(`${f}: ${spec}`);
      } else if (!packages.has(packageName(spec))) {
        packages.set(packageName(spec), f);
      }
    }
  }
  return { files: [...seen].sort(), packages, unresolved };
}

// ---------------------------------------------------------------------------
// The rules

export interface CheckInput {
  dockerfile: string;
  dockerignore: string;
  /** hack/run, for NODE_VERSION and need_major */
  hackRun: string;
  repo: Repo;
}

/** Image paths whose origin is this repository file. */
function imagePathsOf(model: StageModel, repoPath: string): string[] {
  return [...model.files].filter(([, o]) => o.kind === 'context' && o.repoPath === repoPath).map(([p]) => p);
}

export function checkImage(input: CheckInput): string[] {
  const problems: string[] = [];
  const df = parseDockerfile(input.dockerfile);
  const ignore = new DockerIgnore(input.dockerignore);
  const { repo } = input;
  if (df.stages.length < 2) problems.push(`want a multi-stage build (build + runtime), found ${df.stages.length} stage(s)`);
  if (df.stages.length === 0) return problems;
  const models = imageModel(df, ignore, repo);
  for (const m of models) problems.push(...m.problems.map((p) => `stage ${stageKey(m.stage)}: ${p}`));
  const final = models[models.length - 1]!;
  const pkg = JSON.parse(repo.read('package.json')) as {
    type?: string; bin?: Record<string, string>; dependencies?: Record<string, string>; devDependencies?: Record<string, string>;
  };

  // --- base images: Node of hack/run, same Debian release in every stage, slim runtime
  const nodeVersion = /^NODE_VERSION=(\S+)/m.exec(input.hackRun)?.[1];
  const needMajor = /^need_major=(\d+)/m.exec(input.hackRun)?.[1];
  const bases = df.stages.map((s) => ({ s, m: /^(?:docker\.io\/(?:library\/)?)?node:(\d+)(?:\.(\d+)\.(\d+))?-([a-z]+)(-slim)?$/.exec(s.base) }));
  for (const { s, m } of bases) {
    if (models.some((x) => stageKey(x.stage) === s.base)) continue; // FROM an earlier stage
    if (!m) {
      problems.push(`stage ${stageKey(s)}: base image ${s.base || '(empty: an ARG without a default?)'} is not node:<version>-<debian release>[-slim]`);
      continue;
    }
    if (needMajor && m[1] !== needMajor) problems.push(`stage ${stageKey(s)}: Node major ${m[1]} in ${s.base}, hack/run needs ${needMajor}`);
    if (nodeVersion && m[2] !== undefined && `${m[1]}.${m[2]}.${m[3]}` !== nodeVersion) {
      problems.push(`stage ${stageKey(s)}: Node ${m[1]}.${m[2]}.${m[3]} in ${s.base}, hack/run pins NODE_VERSION=${nodeVersion}`);
    }
  }
  const releases = new Set(bases.filter((b) => b.m).map((b) => b.m![4]));
  if (releases.size > 1) problems.push(`stages use different Debian releases (${[...releases].join(', ')}): addons compiled against one glibc may not load on another`);
  const finalBase = bases[bases.length - 1]!;
  if (finalBase.m && !finalBase.m[5]) problems.push(`the runtime stage's base ${finalBase.s.base} is not a -slim image (the full image carries compilers and headers)`);

  // --- npm: production dependencies only, and the install script has its inputs
  for (const m of models) {
    for (const r of m.npmRuns) {
      const where = `stage ${stageKey(m.stage)} line ${r.line} (${r.text})`;
      if (!/^npm\s+ci\b/.test(r.text)) problems.push(`${where}: use npm ci (the lock file pins every dependency)`);
      if (!r.omitDev) problems.push(`${where}: installs devDependencies (want --omit=dev)`);
      for (const need of ['package.json', 'package-lock.json']) {
        if (!r.before.has(`${r.workdir}/${need}`)) problems.push(`${where}: ${need} is not in ${r.workdir} before npm runs`);
      }
      const script = /^node\s+(\S+)$/.exec((JSON.parse(repo.read('package.json')) as { scripts?: Record<string, string> }).scripts?.install ?? '')?.[1];
      if (script && !/--ignore-scripts\b/.test(r.text)) {
        if (!r.before.has(`${r.workdir}/${script}`)) problems.push(`${where}: the install script's ${script} is not in ${r.workdir} before npm runs`);
        for (const c of repo.filesUnder('src/native').filter((f) => f.endsWith('.c'))) {
          if (!r.before.has(`${r.workdir}/${c}`)) problems.push(`${where}: ${c} is not in ${r.workdir} before npm runs (the install script compiles it)`);
        }
      }
    }
  }
  for (const [p, o] of final.files) {
    if (o.kind === 'node_modules' && !o.omitDev) problems.push(`runtime: ${p} comes from an npm run in stage ${o.stage} that installed devDependencies`);
    if (o.kind === 'context' && /(^|\/)node_modules\//.test(o.repoPath)) problems.push(`runtime: ${p} is copied from the repository's node_modules (built for the host, with devDependencies)`);
  }

  // --- the entry point
  const ep = final.stage.instructions.filter((i) => i.cmd === 'ENTRYPOINT').pop();
  let appRoot: string | undefined;
  if (!ep) {
    problems.push('runtime: no ENTRYPOINT');
  } else if (!ep.exec) {
    problems.push(`runtime: ENTRYPOINT ${ep.text} is the shell form (signals would go to /bin/sh, not node): use ["node", "…/bin/peripety"]`);
  } else {
    const [prog, script] = ep.args;
    if (prog !== 'node') problems.push(`runtime: ENTRYPOINT runs ${prog ?? '(nothing)'}, want node`);
    const origin = script === undefined ? undefined : final.files.get(path.posix.resolve(final.workdir, script));
    const wantBin = pkg.bin?.peripety;
    if (!origin || origin.kind !== 'context') problems.push(`runtime: the ENTRYPOINT script ${script ?? '(none)'} is not in the image`);
    else if (wantBin && path.posix.normalize(origin.repoPath) !== path.posix.normalize(wantBin)) problems.push(`runtime: the ENTRYPOINT script is ${origin.repoPath}, package.json's bin.peripety is ${wantBin}`);
    else appRoot = path.posix.dirname(path.posix.dirname(path.posix.resolve(final.workdir, script!)));
  }

  // --- what the entry points load: every file, package.json (module type), production packages, addons
  if (appRoot !== undefined) {
    const pj = final.files.get(`${appRoot}/package.json`);
    if (!pj || pj.kind !== 'context' || pj.repoPath !== 'package.json') problems.push(`runtime: no package.json at ${appRoot} (its "type": "${pkg.type ?? ''}" makes Node load src/*.ts as ES modules)`);
    const entries = Object.values(pkg.bin ?? {}).map((b) => path.posix.normalize(b));
    const closure = runtimeClosure(repo, entries);
    problems.push(...closure.unresolved.map((u) => `repository: unresolved import ${u}`));
    for (const f of closure.files) {
      const at = `${appRoot}/${f}`;
      const o = final.files.get(at);
      if (!o || o.kind !== 'context' || o.repoPath !== f) {
        const elsewhere = imagePathsOf(final, f);
        problems.push(`runtime: ${f} (loaded at run time) is not at ${at}${elsewhere.length ? ` (it is at ${elsewhere.join(', ')})` : ''}`);
      }
    }
    // PERIPETY_ENTRY=dist (bin/entry.mjs): the runtime must hold a dist/ that hack/build-dist.mjs made
    const entryEnv = final.stage.instructions.filter((i) => i.cmd === 'ENV').map((i) => /\bPERIPETY_ENTRY=(\S+)/.exec(i.text)?.[1]).filter((v) => v !== undefined).pop();
    if (entryEnv === 'dist' && final.files.get(`${appRoot}/dist`)?.kind !== 'dist') problems.push(`runtime: PERIPETY_ENTRY=dist but ${appRoot}/dist is not the dist/ hack/build-dist.mjs compiled in a build stage`);
    const nm = final.files.get(`${appRoot}/node_modules`);
    if (!nm) problems.push(`runtime: no node_modules at ${appRoot}`);
    for (const [name, importer] of closure.packages) {
      if (!pkg.dependencies?.[name]) {
        const dev = pkg.devDependencies?.[name] ? ' (it is a devDependency: npm ci --omit=dev leaves it out)' : '';
        problems.push(`runtime: ${importer} imports ${name}, which is not in package.json's dependencies${dev}`);
      }
    }
    // addons: a module under src/native loads `../../build/<name>.node` (a
    // literal name or a template), one per src/native/<name>.c
    const addonNames = repo.filesUnder('src/native').filter((f) => f.endsWith('.c')).map((f) => path.posix.basename(f, '.c'));
    const addonDirs = new Set<string>();
    for (const f of closure.files.filter((x) => x.startsWith('src/native/'))) {
      for (const a of repo.read(f).matchAll(/['"`]((?:\.\.\/)+build)\/(?:\$\{[^}`]*\}|[\w.-]+)\.node['"`]/g)) {
        addonDirs.add(path.posix.resolve(`${appRoot}/${path.posix.dirname(f)}`, a[1]!));
      }
    }
    if (addonNames.length > 0 && addonDirs.size === 0) problems.push('repository: no module under src/native loads ../../build/<name>.node (the check cannot find where the addons are loaded from)');
    for (const dir of addonDirs) {
      for (const name of addonNames) {
        const o = final.files.get(`${dir}/${name}.node`);
        if (!o || o.kind !== 'addon') problems.push(`runtime: ${dir}/${name}.node (the addon of src/native/${name}.c) is not in the image: no build stage compiled it there`);
      }
    }
  }

  // --- the user: not root, numeric (kubelet can verify runAsNonRoot only for a numeric uid)
  const uid = final.user.split(':')[0] ?? '';
  if (final.user === '') problems.push('runtime: no USER: the image runs as root');
  else if (!/^\d+$/.test(uid)) problems.push(`runtime: USER ${final.user} is not numeric (the kubelet cannot verify runAsNonRoot for a user name)`);
  else if (uid === '0') problems.push(`runtime: USER ${final.user} is root`);

  // --- the context leaves out what must never go in
  for (const p of ['node_modules/zod/package.json', 'build/peripety_native.node', '.tools/node-24/bin/node', '.git/HEAD', 'test/unit/bus.test.ts', 'test/fixtures/lines/block.jsonl', 'src/native/build/x.node']) {
    if (!ignore.excludes(p)) problems.push(`.dockerignore: ${p} would be sent in the build context`);
  }
  return problems;
}
