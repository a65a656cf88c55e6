// Structured JSON logs on stderr (stdout belongs to the stdout receiver).
import pino from 'pino';

export type Logger = pino.Logger;
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export function createLogger(level: LogLevel = 'info', name = 'peripety'): Logger {
  // Synchronous writes: logs are rare, and a crash must not lose the last line.
  return pino({ name, level, base: { pid: process.pid } }, pino.destination({ dest: 2, sync: true }));
}

/** A logger that drops everything (offline tools, tests). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
