// One registry shape for every kind of component: collectors, parsers,
// receivers and storage backends. It has two halves on purpose. The pure half
// (PluginInfo: name, description, options) sits in each component's
// options.ts, so the configuration loader, the CRD validation and with them
// the controller check a configuration without loading an implementation (a
// collector's native addon, pg, node:sqlite). The agent's registries
// (src/agent/plugins.ts, src/storage/backends/index.ts) spread that info and
// add `build`: a PluginSpec.
import type { z } from 'zod';

export interface PluginInfo<O = unknown> {
  /** what a configuration names it by: a section's `plugin`, a backend's `File` */
  readonly name: string;
  /** one line for people: `peripety list-plugins`, "no such plugin" errors */
  readonly description: string;
  /** the zod schema of its options; what it produces is what `build` gets */
  readonly options: z.ZodType<O>;
}

export interface PluginSpec<O, Deps, Impl> extends PluginInfo<O> {
  /** One instance named `instance` (the section or backend name), from options its schema produced. */
  build(instance: string, options: O, deps: Deps): Impl;
}

/** A registry: plugins by name. */
export type Registry<P extends PluginInfo> = Readonly<Record<string, P>>;

/** The plugin `name` names, if any (own keys only: `toString` is not a plugin). */
export function pluginNamed<P extends PluginInfo>(registry: Registry<P>, name: string): P | undefined {
  return Object.hasOwn(registry, name) ? registry[name] : undefined;
}

/** Validate raw options with the plugin's schema (throws a ZodError) and build one instance. */
export function buildPlugin<O, Deps, Impl>(spec: PluginSpec<O, Deps, Impl>, instance: string, options: unknown, deps: Deps): Impl {
  return spec.build(instance, spec.options.parse(options), deps);
}

/** A plugin's pure half with `build` added (keeps `build`'s options typed as the plugin's own). */
export function withBuild<O, Deps, Impl>(info: PluginInfo<O>, build: (instance: string, options: O, deps: Deps) => Impl): PluginSpec<O, Deps, Impl> {
  return { ...info, build };
}
