// The four prom-client classes the agent uses, without the rest of the
// package. prom-client's index also loads its default-metrics collectors
// (with @opentelemetry/api, 51 modules), the Pushgateway (http, https, zlib)
// and the cluster aggregator (node:cluster): ≈13 MiB of resident memory for
// the life of a process that uses none of them (issue 14; measured: 16.3 MiB
// for `require('prom-client')`, 3.5 MiB for these four files).
//
// These are the very classes of the package (its index re-exports the same
// modules), so a Registry or a Counter from here and one from 'prom-client'
// are interchangeable. hack/build-dist.mjs points the compiled modules that
// import nothing else from 'prom-client' at this file; the sources (tests,
// `PERIPETY_ENTRY=src`) keep importing the package.
import { createRequire } from 'node:module';
import type * as Prom from 'prom-client';

const requirePkg = createRequire(import.meta.url);

export const Registry = requirePkg('prom-client/lib/registry') as typeof Prom.Registry;
export type Registry = Prom.Registry;
export const Counter = requirePkg('prom-client/lib/counter') as typeof Prom.Counter;
export type Counter<T extends string = string> = Prom.Counter<T>;
export const Gauge = requirePkg('prom-client/lib/gauge') as typeof Prom.Gauge;
export type Gauge<T extends string = string> = Prom.Gauge<T>;
export const Histogram = requirePkg('prom-client/lib/histogram') as typeof Prom.Histogram;
export type Histogram<T extends string = string> = Prom.Histogram<T>;

