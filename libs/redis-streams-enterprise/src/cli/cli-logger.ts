import type { LoggerService } from '@nestjs/common';
import type { CliOutput } from './cli-context.js';

/**
 * The library logs through Nest's Logger (stdout). In the CLI, stdout is the command's output (and may be JSON), so
 * warnings and errors go to stderr as one line each and lifecycle messages are dropped.
 */
export class CliLogger implements LoggerService {
  constructor(private readonly stderr: CliOutput) {}

  log(): void {
    // lifecycle messages ("Redrove 3 dead letters …") repeat what the command prints itself
  }

  warn(message: unknown, ...rest: unknown[]): void {
    this.write('warn', message, rest);
  }

  error(message: unknown, ...rest: unknown[]): void {
    // Nest passes (message, stack?, context?): the stack is left out, as everywhere in the CLI.
    this.write('error', message, rest);
  }

  private write(level: string, message: unknown, rest: unknown[]): void {
    const context = rest.length > 0 ? rest[rest.length - 1] : undefined;
    const prefix = typeof context === 'string' && !context.includes('\n') ? `[${context}] ` : '';
    this.stderr.write(`${level}: ${prefix}${String(message)}\n`);
  }
}
