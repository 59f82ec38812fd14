import type { LogLevel } from '@nestjs/common';

const ORDER: LogLevel[] = ['verbose', 'debug', 'log', 'warn', 'error', 'fatal'];

/** Nest log levels from `LOG_LEVEL` (the lowest level to print: verbose, debug, log, warn, error, fatal). */
export function logLevelsFromEnv(env: NodeJS.ProcessEnv = process.env, fallback: LogLevel = 'log'): LogLevel[] {
  const wanted = (env.LOG_LEVEL ?? fallback).trim().toLowerCase() as LogLevel;
  const index = ORDER.indexOf(wanted);
  return ORDER.slice(index === -1 ? ORDER.indexOf(fallback) : index);
}
