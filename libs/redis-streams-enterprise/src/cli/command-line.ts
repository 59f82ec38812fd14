import { parseArgs } from 'node:util';
import { CliError } from './cli-context.js';

/**
 * The CLI's command-line grammar, on Node's `util.parseArgs` (no dependency): commands and subcommands, options with
 * values (`--from <iso|ms>`, also `--from=…`), variadic options (`--stream a b`), flags, required options, options
 * that exclude each other, positional arguments, `--help`/`-h`, `--version`/`-V` and `help [command]`. The root
 * command's options are global: they are accepted before or after any subcommand, as commander did.
 *
 * parseArgs only splits the arguments into tokens (it does not know subcommands); this file decides what they mean
 * and words every mistake as one line that names the option, as `error: …` with exit code 1.
 */

/** A command line the CLI cannot run (unknown option, missing value, …): one line, exit code 1. */
export class UsageError extends CliError {
  constructor(
    message: string,
    /** The command whose `--help` explains the mistake (`nestjs-redis-streams-enterprise dlq list`). */
    readonly commandPath: string,
  ) {
    super(message);
    this.name = 'UsageError';
  }
}

/** Thrown by a value parser (parse.ts): the option (or argument) and the value are named around its message. */
export class InvalidArgumentError extends Error {}

export interface OptionSpec {
  /** As help and errors show it: `-p, --pattern <pattern>`, `--stream <pattern...>`, `--dry-run`. */
  readonly flags: string;
  /** The long name (`pattern`) and, optionally, the one-letter short name (`p`). */
  readonly long: string;
  readonly short?: string;
  /** Where the value lands in `Invocation.flags`: the camel-cased long name (`dryRun`). */
  readonly key: string;
  /** `none`: a flag (true when given); `one`: takes one value (the last one given wins); `many`: variadic. */
  readonly arity: 'none' | 'one' | 'many';
  readonly description: string;
  readonly parse?: (value: string) => unknown;
  readonly required: boolean;
  /** Keys of options this one cannot be used with. */
  readonly conflicts: readonly string[];
  readonly defaultValue?: unknown;
  /** What help shows as the default, when not `defaultValue` itself (never print a URL that may hold a password). */
  readonly defaultLabel?: string;
}

export interface OptionExtras {
  readonly parse?: (value: string) => unknown;
  readonly required?: boolean;
  readonly conflicts?: readonly string[];
  readonly defaultValue?: unknown;
  readonly defaultLabel?: string;
}

const FLAGS = /^(?:-([A-Za-z]), )?--([a-z][a-z0-9-]*)(?: <([^>]+?)(\.\.\.)?>)?$/;

/** Declares an option from its commander-style flags: `option('-s, --stream <pattern...>', 'what it does')`. */
export function option(flags: string, description: string, extras: OptionExtras = {}): OptionSpec {
  const match = FLAGS.exec(flags);
  if (!match) throw new Error(`bad option flags "${flags}"`); // a programming error, found by any test that runs the CLI
  const [, short, long, value, variadic] = match;
  return {
    flags,
    long,
    ...(short === undefined ? {} : { short }),
    key: long.replace(/-([a-z0-9])/g, (_, c: string) => c.toUpperCase()),
    arity: value === undefined ? 'none' : variadic ? 'many' : 'one',
    description,
    required: extras.required === true,
    conflicts: extras.conflicts ?? [],
    ...(extras.parse === undefined ? {} : { parse: extras.parse }),
    ...(extras.defaultValue === undefined ? {} : { defaultValue: extras.defaultValue }),
    ...(extras.defaultLabel === undefined ? {} : { defaultLabel: extras.defaultLabel }),
  };
}

export interface ArgumentSpec {
  readonly name: string;
  readonly description: string;
  readonly parse?: (value: string) => unknown;
}

/** What a command's action gets: the parsed option values (global ones included, defaults applied) and arguments. */
export interface Invocation {
  readonly flags: Readonly<Record<string, unknown>>;
  readonly args: readonly unknown[];
}

export interface CommandSpec {
  readonly name: string;
  readonly description: string;
  /** One line for the parent's list of commands (default: the description). */
  readonly summary?: string;
  readonly options?: readonly OptionSpec[];
  /** Required positional arguments, in order. */
  readonly arguments?: readonly ArgumentSpec[];
  readonly commands?: readonly CommandSpec[];
  /** Printed after the help (examples). */
  readonly helpAfter?: string;
  /** Absent on a group of subcommands (`dlq`): running the group itself shows its help. */
  readonly action?: (invocation: Invocation) => Promise<void> | void;
}

export const HELP_OPTION = option('-h, --help', 'display help for command');
export const VERSION_OPTION = option('-V, --version', 'output the version number');

export type CommandLine =
  | { readonly kind: 'run'; readonly path: readonly CommandSpec[]; readonly invocation: Invocation }
  /** `--help`, `help [command]` (to stdout, exit 0) or a group run without a subcommand (to stderr, exit 1). */
  | { readonly kind: 'help'; readonly path: readonly CommandSpec[]; readonly isError: boolean }
  | { readonly kind: 'version' };

type OptionToken = { readonly name: string; readonly rawName: string; readonly value?: string; readonly inlineValue?: boolean };

/** The options a command accepts: its own, the root's (global) ones, `--help` and (anywhere, as before) `--version`. */
export function optionsOf(path: readonly CommandSpec[]): OptionSpec[] {
  const own = path.length > 1 ? (path.at(-1)!.options ?? []) : [];
  return [...own, ...(path[0].options ?? []), VERSION_OPTION, HELP_OPTION];
}

/** The words that run a command: `nestjs-redis-streams-enterprise dlq list`. */
export const commandPathOf = (path: readonly CommandSpec[]) => path.map((c) => c.name).join(' ');

/**
 * Reads `argv` (without the program name) against the command tree rooted at `root`.
 * @throws UsageError for anything the CLI cannot run, checked in this order: unknown command, unknown option, a
 *   missing or unexpected option value, an invalid value, options that exclude each other, a required option or
 *   argument left out, extra arguments.
 */
export function parseCommandLine(root: CommandSpec, argv: readonly string[]): CommandLine {
  const { path, options, extraValues, positionals, helpCommand } = splitTokens(root, argv);
  const command = path.at(-1)!;
  const where = commandPathOf(path);
  const accepted = optionsOf(path);
  const given = new Map<OptionSpec, unknown>();
  for (const token of options) {
    // parseArgs names a known short option by its long name; an unknown `-x` stays `x`.
    const spec = accepted.find((o) => o.long === token.name || (!token.rawName.startsWith('--') && o.short === token.name));
    if (!spec) {
      const known = accepted.map((o) => `--${o.long}`);
      throw new UsageError(`unknown option '${token.rawName}'${token.rawName.startsWith('--') ? suggestion(token.rawName, known) : ''}`, where);
    }
    if (spec === HELP_OPTION) return { kind: 'help', path, isError: false };
    if (spec === VERSION_OPTION) return { kind: 'version' };
    given.set(spec, valueOf(spec, token, extraValues.get(token) ?? [], given.get(spec), where));
  }
  if (helpCommand) return { kind: 'help', path, isError: false };
  if (!command.action) return { kind: 'help', path, isError: true };
  const args = checkInvocation(command, accepted, given, positionals, where);
  const flags: Record<string, unknown> = {};
  for (const spec of accepted) {
    if (given.has(spec)) flags[spec.key] = given.get(spec);
    else if (spec.defaultValue !== undefined) flags[spec.key] = spec.defaultValue;
  }
  return { kind: 'run', path, invocation: { flags, args } };
}

interface SplitTokens {
  readonly path: CommandSpec[];
  readonly options: OptionToken[];
  readonly extraValues: Map<OptionToken, string[]>;
  readonly positionals: string[];
  readonly helpCommand: boolean;
}

/** Walks the tokens: subcommand names extend the path, options and positionals are collected for checking. */
function splitTokens(root: CommandSpec, argv: readonly string[]): SplitTokens {
  const { tokens } = parseArgs({ args: [...argv], options: tokenizerConfig(root), strict: false, allowPositionals: true, tokens: true });
  const split: SplitTokens = { path: [root], options: [], extraValues: new Map(), positionals: [], helpCommand: false };
  let helpCommand = false;
  let variadic: OptionToken | undefined; // `--stream a b`: positionals right after a variadic option are its values
  let afterTerminator = false;
  for (const token of tokens) {
    if (token.kind === 'option-terminator') {
      afterTerminator = true;
      variadic = undefined;
    } else if (token.kind === 'option') {
      split.options.push(token);
      variadic = token.value !== undefined && specOf(root, token)?.arity === 'many' ? token : undefined;
      if (variadic) split.extraValues.set(token, []);
    } else if (variadic && !afterTerminator) {
      split.extraValues.get(variadic)!.push(token.value);
    } else {
      const command = split.path.at(-1)!;
      if (command.commands && split.positionals.length === 0 && !afterTerminator) {
        if (token.value === 'help' && !helpCommand) {
          helpCommand = true;
          continue;
        }
        const sub = command.commands.find((c) => c.name === token.value);
        if (!sub) throw new UsageError(`unknown command '${token.value}'${suggestion(token.value, command.commands.map((c) => c.name))}`, commandPathOf(split.path));
        split.path.push(sub);
      } else {
        split.positionals.push(token.value);
      }
    }
  }
  return { ...split, helpCommand };
}

/** Options that exclude each other, required options and the arguments' count and values; returns the parsed arguments. */
function checkInvocation(command: CommandSpec, accepted: OptionSpec[], given: Map<OptionSpec, unknown>, positionals: string[], where: string): unknown[] {
  for (const [spec] of given) {
    const other = accepted.find((o) => spec.conflicts.includes(o.key) && given.has(o));
    if (other) throw new UsageError(`option '${spec.flags}' cannot be used with option '${other.flags}'`, where);
  }
  const missing = accepted.find((o) => o.required && !given.has(o));
  if (missing) throw new UsageError(`required option '${missing.flags}' not specified`, where);
  const expected = command.arguments ?? [];
  if (positionals.length < expected.length) throw new UsageError(`missing required argument '${expected[positionals.length].name}'`, where);
  if (positionals.length > expected.length) {
    const n = expected.length;
    throw new UsageError(`too many arguments for '${command.name}'. Expected ${n} argument${n === 1 ? '' : 's'} but got ${positionals.length}.`, where);
  }
  return expected.map((spec, i) => parseValue(spec.parse, positionals[i], (why) => `argument '${spec.name}' value '${positionals[i]}' is invalid. ${why}`, where));
}

/** parseArgs must know which options take a value, to tell `--prefix x dlq` from `--json dlq`: every option of the tree. */
function tokenizerConfig(root: CommandSpec): Record<string, { type: 'string' | 'boolean'; short?: string; multiple: true }> {
  const config: Record<string, { type: 'string' | 'boolean'; short?: string; multiple: true }> = {};
  const visit = (command: CommandSpec) => {
    for (const spec of command.options ?? []) {
      const known = config[spec.long];
      const type = spec.arity === 'none' ? 'boolean' : 'string';
      // One name, one meaning across commands: otherwise a value could be read as a command or the other way round.
      if (known && (known.type !== type || known.short !== spec.short)) throw new Error(`option --${spec.long} is declared twice, differently`);
      config[spec.long] = { type, ...(spec.short === undefined ? {} : { short: spec.short }), multiple: true };
    }
    command.commands?.forEach(visit);
  };
  visit({ name: '', description: '', options: [HELP_OPTION, VERSION_OPTION], commands: [root] });
  return config;
}

function specOf(root: CommandSpec, token: OptionToken): OptionSpec | undefined {
  const find = (command: CommandSpec): OptionSpec | undefined =>
    command.options?.find((o) => o.long === token.name) ?? command.commands?.map(find).find((o) => o !== undefined);
  return find(root);
}

function valueOf(spec: OptionSpec, token: OptionToken, more: readonly string[], before: unknown, where: string): unknown {
  if (spec.arity === 'none') {
    if (token.value !== undefined) throw new UsageError(`option '${spec.flags}' does not take a value`, where);
    return true;
  }
  if (token.value === undefined) throw new UsageError(`option '${spec.flags}' argument missing`, where);
  const parsed = [token.value, ...more].map((value) =>
    parseValue(spec.parse, value, (why) => `option '${spec.flags}' argument '${value}' is invalid. ${why}`, where),
  );
  if (spec.arity === 'one') return parsed[0];
  return [...((before as unknown[] | undefined) ?? []), ...parsed];
}

function parseValue(parse: ((value: string) => unknown) | undefined, value: string, invalid: (why: string) => string, where: string): unknown {
  if (!parse) return value;
  try {
    return parse(value);
  } catch (error) {
    if (error instanceof InvalidArgumentError) throw new UsageError(invalid(error.message), where);
    throw error;
  }
}

/** `; did you mean --limit?` for a near miss (at most a third of the letters differ), else nothing. */
export function suggestion(word: string, candidates: readonly string[]): string {
  let best: string | undefined;
  let bestDistance = Math.max(1, Math.floor(word.replace(/^-+/, '').length / 3)) + 1;
  for (const candidate of candidates) {
    const d = editDistance(word, candidate);
    if (d < bestDistance) [best, bestDistance] = [candidate, d];
  }
  return best === undefined ? '' : `; did you mean ${best}?`;
}

/** Levenshtein distance (adjacent swaps count once). */
function editDistance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[a.length][b.length];
}
