import { readFileSync } from 'node:fs';
import { Command, CommanderError, Option } from 'commander';
import { InvalidOptionsError } from '../errors/invalid-options.error.js';
import { RedisStreamsError } from '../errors/redis-streams.error.js';
import { CliError, DEFAULT_PREFIX, DEFAULT_URL, type CliIo } from './cli-context.js';
import { addDeadLettersCommand } from './dead-letters.command.js';
import { writeJson } from './format.js';
import { parsePrefix } from './parse.js';
import { addReplayCommand } from './replay.command.js';

export const CLI_NAME = 'nestjs-redis-streams-enterprise';

/** Exit codes: 0 success, 1 error (usage, Redis, not found), 130 cancelled with Ctrl-C. */
export const EXIT_OK = 0;
export const EXIT_ERROR = 1;
export const EXIT_INTERRUPTED = 130;

/** What an action reports back besides its output (an action that did not fail but wants a non-zero exit). */
export interface CliRun {
  exitCode: number;
}

function packageVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: string };
    return pkg.version ?? 'unknown';
  } catch {
    return 'unknown'; // not fatal: only --version shows it
  }
}

/**
 * Builds the commander program. Nothing connects to Redis until a command runs; output goes to `io`, and errors
 * are thrown (commander's exitOverride) instead of exiting the process, so tests run it in-process.
 */
export function buildProgram(io: CliIo, run: CliRun = { exitCode: EXIT_OK }): Command {
  const program = new Command(CLI_NAME)
    .description('Operate nestjs-redis-streams-enterprise streams: replay messages, reset consumer groups, manage dead letters.')
    .version(packageVersion(), '-V, --version')
    .addOption(
      new Option('--url <redis-url>', 'Redis to connect to (redis:// or rediss://)').default(
        io.env.REDIS_URL ?? DEFAULT_URL,
        io.env.REDIS_URL ? '$REDIS_URL' : DEFAULT_URL, // never print a URL that may hold a password
      ),
    )
    .addOption(new Option('--prefix <keyPrefix>', 'key prefix of the streams (streams.keyPrefix)').default(DEFAULT_PREFIX).argParser(parsePrefix))
    .option('--json', 'machine-readable output: one JSON document on stdout (errors as JSON on stderr)', false)
    .showHelpAfterError('(add --help for usage)')
    .configureHelp({ showGlobalOptions: true })
    .configureOutput({
      writeOut: (text) => void io.stdout.write(text),
      writeErr: (text) => void io.stderr.write(text),
      getOutHelpWidth: () => io.stdout.columns ?? 100,
      getErrHelpWidth: () => io.stderr.columns ?? 100,
    })
    .exitOverride()
    .addHelpText(
      'after',
      `
Examples:
  $ ${CLI_NAME} dlq patterns
  $ ${CLI_NAME} dlq list --pattern orders.created --reason max-deliveries --from 2026-11-26T00:00:00Z
  $ ${CLI_NAME} dlq redrive --pattern orders.created --error-name TimeoutError --dry-run
  $ ${CLI_NAME} replay --stream orders.created --from 2026-11-26T08:00:00Z --to-stream orders.created.staging --dry-run
  $ ${CLI_NAME} replay --stream orders.created --from 2026-11-26T08:00:00Z --reset-group billing

Exit codes: 0 success, 1 error, 130 cancelled with Ctrl-C.`,
    );
  addReplayCommand(program, io, run);
  addDeadLettersCommand(program, io);
  return program;
}

/** Parses `argv` (the arguments after the program name), runs the command and returns the exit code. Never throws. */
export async function runCli(argv: readonly string[], io: CliIo): Promise<number> {
  const run: CliRun = { exitCode: EXIT_OK };
  const program = buildProgram(io, run);
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return run.exitCode;
  } catch (error) {
    // Commander already printed its own message (or the help/version) through configureOutput.
    if (error instanceof CommanderError) return error.exitCode;
    reportError(io, error, program.opts<{ json?: boolean }>().json === true);
    return error instanceof CliError ? error.exitCode : EXIT_ERROR;
  }
}

/** One line, never a stack trace (unless RSE_CLI_DEBUG is set). */
function reportError(io: CliIo, error: unknown, json: boolean): void {
  const { name, code, message } = describeError(error);
  if (json) writeJson(io.stderr, { error: { name, ...(code ? { code } : {}), message } });
  else io.stderr.write(`error: ${message}\n`);
  if (io.env.RSE_CLI_DEBUG && error instanceof Error && error.stack) io.stderr.write(`${error.stack}\n`);
}

function describeError(error: unknown): { name: string; code?: string; message: string } {
  if (error instanceof InvalidOptionsError) {
    // The CLI builds the configuration from flags: name the flags, not the configuration paths.
    const message = error.violations
      .map((v) => v.message.replace(/^connection\.url\b/, '--url').replace(/^streams\.keyPrefix\b/, '--prefix'))
      .join('; ');
    return { name: error.name, code: error.code, message };
  }
  if (error instanceof RedisStreamsError) {
    const hint = error.code === 'CONNECTION_FAILED' ? ' (pass --url or set REDIS_URL)' : '';
    return { name: error.name, code: error.code, message: `${error.message}${hint}` };
  }
  if (error instanceof CliError) return { name: error.name, message: error.message };
  if (error instanceof Error) return { name: error.name, message: `${error.name}: ${error.message}` };
  return { name: 'Error', message: String(error) };
}
