import type { RedisStreamsEnterpriseConfig } from '../config/redis-streams.options.js';

/** Where the CLI writes: `process.stdout`/`process.stderr` in the bin, string buffers in tests. */
export interface CliOutput {
  write(chunk: string): unknown;
  readonly isTTY?: boolean;
  readonly columns?: number;
}

/** Everything the CLI takes from its surroundings, so the program runs in-process in tests. */
export interface CliIo {
  readonly stdout: CliOutput;
  readonly stderr: CliOutput;
  /** Environment for defaults (`REDIS_URL`). */
  readonly env: Readonly<Record<string, string | undefined>>;
  /**
   * Registers what Ctrl-C does while a long operation runs; returns the function that unregisters it. The bin wires
   * it to SIGINT; tests call the handler themselves. Without it, Ctrl-C is not handled.
   */
  readonly onInterrupt?: (handler: () => void) => () => void;
}

/** Options every command takes (declared on the root program). */
export interface GlobalOptions {
  readonly url: string;
  readonly prefix: string;
  readonly json: boolean;
  /** Who runs the command, as the audit trail records it (`--actor`, default: the OS user name). */
  readonly actor?: string;
}

export const DEFAULT_URL = 'redis://127.0.0.1:6379';
export const DEFAULT_PREFIX = 'rse';

/** The library configuration the CLI's managers use. */
export function configOf(options: GlobalOptions): RedisStreamsEnterpriseConfig {
  return {
    connection: { url: options.url },
    streams: { keyPrefix: options.prefix },
    ...(options.actor === undefined ? {} : { compliance: { actor: options.actor } }),
  };
}

/** A usage or state problem the CLI reports as one line and exit code 1 (or `exitCode`). */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
    this.name = 'CliError';
  }
}

/** What an action reports back besides its output (an action that did not fail but wants a non-zero exit). */
export interface CliRun {
  exitCode: number;
}
