import type { DeadLetter, DeadLetterFilter } from '../dead-letter/dead-letter.js';
import type { DeadLetterManager } from '../dead-letter/dead-letter.manager.js';
import { CliError, configOf, type CliIo, type GlobalOptions } from './cli-context.js';
import { option, type CommandSpec, type Invocation, type OptionSpec } from './command-line.js';
import { idTime, isoOrDash, line, moreLine, plural, SAMPLE_SIZE, table, truncate, writeJson } from './format.js';
import { parseEntryId, parsePositiveInt, parseTime } from './parse.js';

/** Flags of the filtering subcommands (list, redrive, purge). */
interface FilterFlags {
  readonly pattern: string;
  readonly reason?: string;
  readonly group?: string;
  readonly errorName?: string;
  readonly errorMessage?: string;
  readonly messagePattern?: string;
  readonly from?: number;
  readonly to?: number;
  readonly limit?: number;
  readonly dryRun?: boolean;
  readonly yes?: boolean;
}

type Flags = FilterFlags & GlobalOptions;

const PATTERN = option('-p, --pattern <pattern>', 'message pattern whose dead letters to use (e.g. orders.created)', { required: true });

/** Options of the filtering subcommands (list, redrive, purge). */
function filterOptions({ limit }: { limit: boolean }): OptionSpec[] {
  return [
    PATTERN,
    option('--reason <reason>', 'only this reason: max-deliveries, decode-failed, no-handler, rejected'),
    option('--group <group>', 'only letters of this consumer group'),
    option('--error-name <name>', 'only errors of this name (e.g. TypeError)'),
    option('--error-message <text>', 'only errors whose message contains this text'),
    option('--message-pattern <pattern>', 'only messages whose own pattern is this (a stream may carry other patterns)'),
    option('--from <iso|ms>', 'only letters dead-lettered at or after this time (ISO 8601 or epoch ms)', { parse: parseTime }),
    option('--to <iso|ms>', 'only letters dead-lettered at or before this time (ISO 8601 or epoch ms)', { parse: parseTime }),
    ...(limit ? [option('--limit <n>', 'at most this many letters', { parse: parsePositiveInt })] : []),
  ];
}

const DRY_RUN = (what: string) => option('--dry-run', `only list what would be ${what}; change nothing`);

function toFilter(flags: FilterFlags): DeadLetterFilter {
  if (flags.from !== undefined && flags.to !== undefined && flags.from > flags.to) {
    throw new CliError(`--from (${new Date(flags.from).toISOString()}) is after --to (${new Date(flags.to).toISOString()})`);
  }
  return {
    ...(flags.reason === undefined ? {} : { reason: flags.reason }),
    ...(flags.group === undefined ? {} : { group: flags.group }),
    ...(flags.errorName === undefined ? {} : { errorName: flags.errorName }),
    ...(flags.errorMessage === undefined ? {} : { errorMessage: flags.errorMessage }),
    ...(flags.messagePattern === undefined ? {} : { messagePattern: flags.messagePattern }),
    ...(flags.from === undefined ? {} : { from: flags.from }),
    ...(flags.to === undefined ? {} : { to: flags.to }),
  };
}

async function withManager<T>(options: GlobalOptions, work: (manager: DeadLetterManager) => Promise<T>): Promise<T> {
  // Loaded on use, so `--help` and usage errors do not pay for loading Nest, ioredis and class-validator.
  const { DeadLetterManager } = await import('../dead-letter/dead-letter.manager.js');
  const manager = new DeadLetterManager(configOf(options));
  try {
    return await work(manager);
  } finally {
    await manager.close();
  }
}

/**
 * Counts the letters matching a filter (up to `limit`) and keeps the ids of all of them and the first SAMPLE_SIZE
 * letters, without holding every letter in memory: `list` pages through the stream and the `where` hook sees each
 * match. `where` answers true only for the `limit`-th match, which ends the listing at once (it lists at most 1).
 */
async function preview(
  manager: DeadLetterManager,
  pattern: string,
  filter: DeadLetterFilter,
  limit = Number.POSITIVE_INFINITY,
): Promise<{ dlqIds: string[]; sample: DeadLetter[] }> {
  const dlqIds: string[] = [];
  const sample: DeadLetter[] = [];
  await manager.list(pattern, {
    ...filter,
    limit: 1,
    where: (letter) => {
      dlqIds.push(letter.dlqId);
      if (sample.length < SAMPLE_SIZE) sample.push(letter);
      return dlqIds.length >= limit;
    },
  });
  return { dlqIds, sample };
}

function letterRows(letters: readonly DeadLetter[]): string {
  return table(
    ['DLQ ID', 'DEAD-LETTERED', 'REASON', 'GROUP', 'TRIES', 'MESSAGE ID', 'ERROR'],
    letters.map((l) => [
      l.dlqId,
      idTime(l.dlqId),
      l.reason || '-',
      l.group || '-',
      String(l.deliveries),
      l.messageId ?? '-',
      truncate(l.errorName ? `${l.errorName}: ${l.errorMessage}` : l.errorMessage || '-', 70),
    ]),
  );
}

/** A letter for `--json` (dates as ISO strings by JSON.stringify; raw fields only in `show`). */
function letterJson(letter: DeadLetter, withFields = false): Record<string, unknown> {
  const { fields, ...rest } = letter;
  return withFields ? { ...rest, fields } : rest;
}

function printLetter(io: CliIo, l: DeadLetter): void {
  const rows: [string, string][] = [
    ['dlq id', `${l.dlqId} (${l.dlqStream})`],
    ['dead-lettered', idTime(l.dlqId)],
    ['pattern', l.pattern || '-'],
    ['reason', l.reason || '-'],
    ['from', `${l.stream || '-'} entry ${l.originalId || '-'}`],
    ['group', `${l.group || '-'} (consumer ${l.consumer || '-'})`],
    ['deliveries', String(l.deliveries)],
    ['error', `${l.errorName || '-'}: ${l.errorMessage || '-'}${l.errorCode ? ` (code ${l.errorCode})` : ''}`],
    ['first failed', isoOrDash(l.firstFailedAt)],
    ['last failed', isoOrDash(l.lastFailedAt)],
    ['message id', l.messageId ?? '-'],
    ['headers', Object.keys(l.headers).length > 0 ? JSON.stringify(l.headers) : '-'],
  ];
  for (const [key, value] of rows) line(io.stdout, `${key.padEnd(15)}${value}`);
  line(io.stdout, 'data');
  if (l.data !== undefined) line(io.stdout, JSON.stringify(l.data, null, 2));
  else line(io.stdout, l.rawData === null ? '(none)' : `(not valid JSON) ${l.rawData}`);
}

/** `dlq …`: list, count, show, redrive, purge dead letters and list the patterns that have some. */
export function deadLettersCommand(io: CliIo): CommandSpec {
  const flagsOf = (invocation: Invocation) => invocation.flags as unknown as Flags;
  return {
    name: 'dlq',
    summary: 'list, count, show, redrive and purge dead letters',
    description: 'inspect, redrive and purge dead letters (<prefix>:{<pattern>}:dlq)',
    commands: [
      {
        name: 'list',
        description: 'list dead letters, oldest first (default: at most 100)',
        options: filterOptions({ limit: true }),
        action: (invocation) => list(io, flagsOf(invocation)),
      },
      {
        name: 'count',
        description: 'number of dead letters of a pattern (all of them; use "list" for filters)',
        options: [PATTERN],
        action: (invocation) => count(io, flagsOf(invocation)),
      },
      {
        name: 'show',
        description: 'one dead letter in full: error, times, headers and payload',
        options: [PATTERN],
        arguments: [{ name: 'dlqId', description: 'id of the dead-letter entry (from "dlq list")', parse: parseEntryId }],
        action: (invocation) => show(io, flagsOf(invocation), invocation.args[0] as string),
      },
      {
        name: 'redrive',
        summary: 'move matching dead letters back to their stream (--dry-run to preview)',
        description:
          'move matching dead letters back to their stream, oldest first; each is delivered again to the group that gave up on it. ' +
          'Repeating a redrive cannot deliver a letter twice',
        options: [...filterOptions({ limit: true }), DRY_RUN('redriven')],
        action: (invocation) => redrive(io, flagsOf(invocation)),
      },
      {
        name: 'purge',
        description: 'delete matching dead letters for good (needs --yes)',
        options: [...filterOptions({ limit: false }), DRY_RUN('deleted'), option('-y, --yes', 'really delete')],
        action: (invocation) => purge(io, flagsOf(invocation)),
      },
      {
        name: 'patterns',
        description: 'patterns that have dead letters under this --prefix, with their counts',
        action: (invocation) => patterns(io, flagsOf(invocation)),
      },
    ],
  };
}

async function list(io: CliIo, flags: Flags): Promise<void> {
  const filter = toFilter(flags);
  const limit = flags.limit ?? 100;
  const letters = await withManager(flags, (m) => m.list(flags.pattern, { ...filter, limit }));
  if (flags.json) return writeJson(io.stdout, letters.map((l) => letterJson(l)));
  if (letters.length === 0) return line(io.stdout, `No dead letters of "${flags.pattern}" match.`);
  line(io.stdout, letterRows(letters));
  const more = letters.length >= limit ? ` (the limit; more may match: raise --limit or narrow with --from)` : '';
  line(io.stdout, `${plural(letters.length, 'dead letter')}${more}`);
}

async function count(io: CliIo, flags: Flags): Promise<void> {
  const n = await withManager(flags, (m) => m.count(flags.pattern));
  if (flags.json) return writeJson(io.stdout, { pattern: flags.pattern, count: n });
  line(io.stdout, `${plural(n, 'dead letter')} of "${flags.pattern}"`);
}

async function show(io: CliIo, flags: Flags, dlqId: string): Promise<void> {
  const letter = await withManager(flags, (m) => m.get(flags.pattern, dlqId));
  if (!letter) throw new CliError(`No dead letter ${dlqId} of "${flags.pattern}" (it may have been redriven or purged)`);
  if (flags.json) return writeJson(io.stdout, letterJson(letter, true));
  printLetter(io, letter);
}

async function redrive(io: CliIo, flags: Flags): Promise<void> {
  const filter = toFilter(flags);
  if (flags.dryRun) {
    const { dlqIds, sample } = await withManager(flags, (m) => preview(m, flags.pattern, filter, flags.limit));
    if (flags.json) return writeJson(io.stdout, { pattern: flags.pattern, dryRun: true, wouldRedrive: dlqIds.length, dlqIds });
    line(io.stdout, `Dry run: would redrive ${plural(dlqIds.length, 'dead letter')} of "${flags.pattern}" (nothing was changed)`);
    if (sample.length > 0) line(io.stdout, letterRows(sample));
    return moreLine(io.stdout, sample.length, dlqIds.length);
  }
  const result = await withManager(flags, (m) => m.redrive(flags.pattern, { ...filter, ...(flags.limit === undefined ? {} : { limit: flags.limit }) }));
  if (flags.json) return writeJson(io.stdout, { pattern: flags.pattern, dryRun: false, ...result });
  line(io.stdout, `Redrove ${plural(result.redriven.length, 'dead letter')} of "${flags.pattern}" back to its stream`);
  for (const { dlqId, newId } of result.redriven.slice(0, SAMPLE_SIZE)) line(io.stdout, `  ${dlqId} -> ${newId}`);
  moreLine(io.stdout, Math.min(SAMPLE_SIZE, result.redriven.length), result.redriven.length);
  if (result.skipped.length > 0) {
    line(io.stdout, `Skipped ${plural(result.skipped.length, 'letter')} whose payload was trimmed before it was dead-lettered: ${result.skipped.join(', ')}`);
  }
}

async function purge(io: CliIo, flags: Flags): Promise<void> {
  const filter = toFilter(flags);
  if (flags.dryRun || !flags.yes) {
    const { dlqIds, sample } = await withManager(flags, (m) => preview(m, flags.pattern, filter));
    if (!flags.dryRun) {
      throw new CliError(
        `Refusing to delete ${plural(dlqIds.length, 'dead letter')} of "${flags.pattern}" without --yes (nothing was deleted); ` +
          'preview them with --dry-run',
      );
    }
    if (flags.json) return writeJson(io.stdout, { pattern: flags.pattern, dryRun: true, wouldDelete: dlqIds.length, dlqIds });
    line(io.stdout, `Dry run: would delete ${plural(dlqIds.length, 'dead letter')} of "${flags.pattern}" (nothing was changed)`);
    if (sample.length > 0) line(io.stdout, letterRows(sample));
    return moreLine(io.stdout, sample.length, dlqIds.length);
  }
  const deleted = await withManager(flags, (m) => m.purge(flags.pattern, filter));
  if (flags.json) return writeJson(io.stdout, { pattern: flags.pattern, dryRun: false, deleted });
  line(io.stdout, `Deleted ${plural(deleted, 'dead letter')} of "${flags.pattern}"`);
}

async function patterns(io: CliIo, flags: Flags): Promise<void> {
  const counted = await withManager(flags, async (m) => {
    const out: { pattern: string; count: number }[] = [];
    for (const pattern of await m.patterns()) out.push({ pattern, count: await m.count(pattern) });
    return out;
  });
  if (flags.json) return writeJson(io.stdout, counted);
  if (counted.length === 0) return line(io.stdout, `No dead letters under prefix "${flags.prefix}".`);
  line(io.stdout, table(['PATTERN', 'DEAD LETTERS'], counted.map((c) => [c.pattern, String(c.count)])));
}
