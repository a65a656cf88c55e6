// The filter language (docs/filter-language.md): compile a
// filter string once, then evaluate the compiled filter on every event.
export { compileFilter, MAX_REGEX_LENGTH, MAX_REGEX_SUBJECT, MAX_REGEX_TOTAL, MAX_STACK } from './compile.ts';
export { MAX_FILTER_LENGTH, MAX_TOKENS } from './tokenize.ts';
export type { CompileResult, CompiledFilter, FilterCompileError, FilterHints, FilterResult } from './types.ts';
