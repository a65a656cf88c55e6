// Command-line parsing shared by `peripety` and `prpt`: node:util parseArgs in
// strict mode, with user mistakes turned into one-line errors (exit 2).
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { escapeControlsKeepLines } from '../receivers/format.ts';

export class UsageError extends Error {}

type Options = NonNullable<ParseArgsConfig['options']>;

export function parse<T extends Options>(args: string[], options: T, maxPositionals: number) {
  let res;
  try {
    res = parseArgs({ args, options, allowPositionals: true, strict: true });
  } catch (err) {
    throw new UsageError((err as Error).message.split('\n')[0]!.replace(/\. To specify a positional argument.*$/, ''));
  }
  if (res.positionals.length > maxPositionals) {
    throw new UsageError(`unexpected argument "${res.positionals[maxPositionals]}"`);
  }
  return res;
}

/** Run a CLI entry point: user errors print one line, never a stack trace. */
export async function runCli(prog: string, usage: string, main: () => Promise<number | void>): Promise<void> {
  try {
    const code = await main();
    if (typeof code === 'number') process.exitCode = code;
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`${prog}: ${err.message}\n${usage}`);
      process.exitCode = 2;
    } else {
      // the message may quote what a file, a device or a remote agent said: no raw control characters
      process.stderr.write(`${prog}: ${escapeControlsKeepLines((err as Error).message)}\n`);
      process.exitCode = 1;
    }
  }
}
