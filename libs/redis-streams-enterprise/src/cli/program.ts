import { readFileSync } from 'node:fs';
import { InvalidOptionsError } from '../errors/invalid-options.error.js';
import { RedisStreamsError } from '../errors/redis-streams.error.js';
import { CliError, DEFAULT_PREFIX, DEFAULT_URL, type CliIo, type CliRun } from './cli-context.js';
import { option, parseCommandLine, UsageError, type CommandSpec } from './command-line.js';
import { deadLettersCommand } from './dead-letters.command.js';
import { writeJson } from './format.js';
import { renderHelp } from './help.js';
import { osUser, parseActor, parsePrefix } from './parse.js';
import { replayCommand } from './replay.command.js';
import { auditCommand } from './audit.command.js';
import { complianceCommands } from './compliance.command.js';
import { mirrorCommand } from './mirror.command.js';

export const CLI_NAME = 'nestjs-redis-streams-enterprise';

/** Exit codes: 0 success, 1 error (usage, Redis, not found), 130 cancelled with Ctrl-C. */
export const EXIT_OK = 0;
export const EXIT_ERROR = 1;
export const EXIT_INTERRUPTED = 130;


function packageVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: string };
    return pkg.version ?? 'unknown';
  } catch {
    return 'unknown'; // not fatal: only --version shows it
  }
}

/**
 * The command tree. Nothing connects to Redis until a command runs; output goes to `io`, and errors are thrown, not
 * turned into process exits, so tests run it in-process.
 */
export function buildProgram(io: CliIo, run: CliRun = { exitCode: EXIT_OK }): CommandSpec {
  return {
    name: CLI_NAME,
    description: 'Operate nestjs-redis-streams-enterprise streams: replay messages, reset consumer groups, manage dead letters, erase a data subject, report retention, export the audit trail.',
    // Global options: accepted before or after the subcommand.
    options: [
      option('--url <redis-url>', 'Redis to connect to (redis:// or rediss://)', {
        defaultValue: io.env.REDIS_URL ?? DEFAULT_URL,
        defaultLabel: io.env.REDIS_URL ? '$REDIS_URL' : DEFAULT_URL, // never print a URL that may hold a password
      }),
      option('--prefix <keyPrefix>', 'key prefix of the streams (streams.keyPrefix)', { defaultValue: DEFAULT_PREFIX, parse: parsePrefix }),
      option('--json', 'machine-readable output: one JSON document on stdout (errors as JSON on stderr)', { defaultValue: false }),
      option('--actor <name>', 'who runs the command, as the audit trail records it', { defaultValue: osUser(), parse: parseActor }),
    ],
    commands: [replayCommand(io, run), deadLettersCommand(io), mirrorCommand(io), ...complianceCommands(io), auditCommand(io)],
    helpAfter: `
Examples:
  $ ${CLI_NAME} dlq patterns
  $ ${CLI_NAME} dlq list --pattern orders.created --reason max-deliveries --from 2026-11-26T00:00:00Z
  $ ${CLI_NAME} dlq redrive --pattern orders.created --error-name TimeoutError --dry-run
  $ ${CLI_NAME} replay --stream orders.created --from 2026-11-26T08:00:00Z --to-stream orders.created.staging --dry-run
  $ ${CLI_NAME} replay --stream orders.created --from 2026-11-26T08:00:00Z --reset-group billing
  $ ${CLI_NAME} erase --subject customer-42 --topics 'orders.*' --field customer.id --dry-run
  $ ${CLI_NAME} report retention --dlq-older-than-days 30
  $ ${CLI_NAME} audit export --since 2026-11-01 --format csv > audit.csv
  $ ${CLI_NAME} --url redis://eu:6379 mirror --source-url redis://us:6379 --source-region us --region eu -t 'orders.*'

Exit codes: 0 success, 1 error, 130 cancelled with Ctrl-C.`,
  };
}

/** Parses `argv` (the arguments after the program name), runs the command and returns the exit code. Never throws. */
export async function runCli(argv: readonly string[], io: CliIo): Promise<number> {
  const run: CliRun = { exitCode: EXIT_OK };
  const program = buildProgram(io, run);
  // Known before parsing, so that even a usage error is reported as JSON.
  const terminator = argv.indexOf('--');
  let json = (terminator < 0 ? argv : argv.slice(0, terminator)).includes('--json');
  try {
    const commandLine = parseCommandLine(program, argv);
    switch (commandLine.kind) {
      case 'version':
        io.stdout.write(`${packageVersion()}\n`);
        return EXIT_OK;
      case 'help': {
        // A group run without its subcommand (`dlq`) gets its help as the error, as commander did.
        const out = commandLine.isError ? io.stderr : io.stdout;
        out.write(renderHelp(commandLine.path, out.columns ?? 100));
        return commandLine.isError ? EXIT_ERROR : EXIT_OK;
      }
      case 'run':
        json = commandLine.invocation.flags.json === true;
        await commandLine.path.at(-1)!.action!(commandLine.invocation);
        return run.exitCode;
    }
  } catch (error) {
    reportError(io, error, json);
    return error instanceof CliError ? error.exitCode : EXIT_ERROR;
  }
}

/** One line, never a stack trace (unless RSE_CLI_DEBUG is set). */
function reportError(io: CliIo, error: unknown, json: boolean): void {
  const { name, code, message } = describeError(error);
  if (json) writeJson(io.stderr, { error: { name, ...(code ? { code } : {}), message } });
  else if (error instanceof UsageError) io.stderr.write(`error: ${message} (see ${error.commandPath} --help)\n`);
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
