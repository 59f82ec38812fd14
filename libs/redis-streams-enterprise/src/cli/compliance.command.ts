import type { ErasureReport } from '../compliance/compliance.manager.js';
import type { ComplianceManager } from '../compliance/compliance.manager.js';
import type { RetentionReport } from '../compliance/retention-report.js';
import type { RedisStreamsEnterpriseConfig } from '../config/redis-streams.options.js';
import { SUBJECT_FIELD, SUBJECT_HEADER } from '../config/compliance.options.js';
import { escapeControl as esc } from '../observability/log-format.js';
import { CliError, configOf, type CliIo, type GlobalOptions } from './cli-context.js';
import { InvalidArgumentError, option, type CommandSpec, type Invocation } from './command-line.js';
import { line, plural, SAMPLE_SIZE, table, truncate, writeJson } from './format.js';
import { parsePositiveInt } from './parse.js';

interface EraseFlags extends GlobalOptions {
  readonly subject: string;
  readonly topics?: string[];
  readonly field?: string;
  readonly header?: string;
  readonly dryRun?: boolean;
  readonly yes?: boolean;
  readonly keysFromEnv?: string;
}

interface ReportFlags extends GlobalOptions {
  readonly topics?: string[];
  readonly dlqOlderThanDays: number;
  readonly maxLen?: number;
  readonly retentionMs?: number;
  readonly trimming?: 'safe' | 'hard';
}

const matching = (re: RegExp, what: string) => (value: string) => {
  if (!re.test(value)) throw new InvalidArgumentError(`expected ${what}`);
  return value;
};

function parseDays(value: string): number {
  const n = /^\d{1,5}$/.test(value.trim()) ? Number(value.trim()) : Number.NaN;
  if (!Number.isSafeInteger(n)) throw new InvalidArgumentError('expected a whole number of days (0 or more).');
  return n;
}

function parseTrimming(value: string): 'safe' | 'hard' {
  if (value !== 'safe' && value !== 'hard') throw new InvalidArgumentError("expected 'safe' or 'hard'.");
  return value;
}

async function withManager<T>(config: RedisStreamsEnterpriseConfig, work: (manager: ComplianceManager) => Promise<T>): Promise<T> {
  // Loaded on use, so `--help` and usage errors do not pay for loading Nest, ioredis and class-validator.
  const { ComplianceManager } = await import('../compliance/compliance.manager.js');
  const manager = new ComplianceManager(config);
  try {
    return await work(manager);
  } finally {
    await manager.close();
  }
}

/** `erase`: erasure by subject; `report retention`: what is kept of each topic. */
export function complianceCommands(io: CliIo): CommandSpec[] {
  const flagsOf = <T>(invocation: Invocation) => invocation.flags as unknown as T;
  return [
    {
      name: 'erase',
      summary: 'erase every message of a data subject (GDPR right to erasure); --dry-run to count first',
      description:
        'delete every entry of a subject from the topics\' streams, partitions, dead letters and replay copies, with their claim-check ' +
        'blobs; pending entries of consumer groups that pointed at them are acknowledged. A scan afterwards proves none is left. ' +
        'The subject is never printed or audited in clear (SHA-256). Encrypted topics need the key ring: --keys-from-env',
      options: [
        option('--subject <value>', 'the subject identifier (e.g. a customer id)', { required: true }),
        option('--topics <pattern...>', 'message patterns (globs allowed) to search', { required: true }),
        option('--field <path>', 'payload field holding the subject, dots for nesting (e.g. customer.id)', {
          parse: matching(SUBJECT_FIELD, 'payload field names separated by dots'),
          conflicts: ['header'],
        }),
        option('--header <name>', 'header holding the subject (e.g. x-subject)', { parse: matching(SUBJECT_HEADER, 'a header name [A-Za-z0-9._-]'), conflicts: ['field'] }),
        option('--keys-from-env <VAR>', 'encrypted topics: the environment variable holding the key ring as id:base64key,... (encryption.keysFromEnv)', {
          parse: matching(/^[A-Za-z_][A-Za-z0-9_]{0,127}$/, 'an environment variable name'),
        }),
        option('--dry-run', 'only find and count; delete nothing'),
        option('-y, --yes', 'really delete (erasure cannot be undone)'),
      ],
      action: (invocation) => erase(io, flagsOf<EraseFlags>(invocation)),
    },
    {
      name: 'report',
      description: 'compliance reports',
      commands: [
        {
          name: 'retention',
          description:
            'per topic and partition: the retention policy, length, oldest entry, entries removed and lost to trimming per group, ' +
            'dead letters older than N days',
          options: [
            option('--topics <pattern...>', 'only these patterns (globs allowed)'),
            option('--dlq-older-than-days <n>', 'count dead letters older than this', { defaultValue: 30, parse: parseDays }),
            option('--max-len <n>', "the apps' streams.maxLen (shown as the policy)", { parse: parsePositiveInt }),
            option('--retention-ms <ms>', "the apps' streams.retentionMs (shown as the policy)", { parse: parsePositiveInt }),
            option('--trimming <mode>', "the apps' streams.trimming: safe or hard", { parse: parseTrimming }),
          ],
          action: (invocation) => retention(io, flagsOf<ReportFlags>(invocation)),
        },
      ],
    },
  ];
}

async function erase(io: CliIo, flags: EraseFlags): Promise<void> {
  const topics = flags.topics ?? [];
  if (flags.field === undefined && flags.header === undefined) {
    throw new CliError('erase needs --field <path> or --header <name>: where the subject is in the messages of --topics');
  }
  if (!flags.dryRun && !flags.yes) {
    throw new CliError('Refusing to erase without --yes (nothing was deleted); count first with --dry-run');
  }
  const location = flags.field !== undefined ? { field: flags.field } : { header: flags.header as string };
  const config = {
    ...configOf(flags),
    compliance: { ...configOf(flags).compliance, subjects: Object.fromEntries(topics.map((t) => [t, location])) },
    ...(flags.keysFromEnv === undefined ? {} : { encryption: { enabled: true, keysFromEnv: flags.keysFromEnv } }),
  };
  const report = await withManager(config, (m) => m.erase({ subject: flags.subject, topics, dryRun: flags.dryRun === true }));
  if (flags.json) return writeJson(io.stdout, report);
  printErasure(io, report);
}

function printErasure(io: CliIo, r: ErasureReport): void {
  const t = r.totals;
  line(io.stdout, `Subject sha256=${r.subjectSha256} (never printed in clear)${r.dryRun ? ' — dry run, nothing was deleted' : ''}`);
  if (r.streams.length > 0) {
    const rows = r.streams.slice(0, 200).map((s) => [esc(s.stream), s.kind, String(s.matched), String(s.replayCopies), String(s.deleted), String(s.pendingAcked)]);
    line(io.stdout, table(['STREAM', 'KIND', 'FOUND', 'COPIES', 'DELETED', 'PENDING ACKED'], rows));
  }
  const scanned = `scanned ${plural(r.entriesScanned, 'entry', 'entries')} of ${plural(r.streamsScanned, 'stream')}`;
  if (r.dryRun) line(io.stdout, `Found ${plural(t.matched, 'entry', 'entries')} of the subject (${t.replayCopies} replay copies); ${scanned}`);
  else {
    line(
      io.stdout,
      `Deleted ${plural(t.deleted, 'entry', 'entries')} (${t.replayCopies} replay copies), acknowledged ${plural(t.pendingAcked, 'pending entry', 'pending entries')}, ` +
        `deleted ${plural(t.blobsDeleted, 'claim-check blob')}; ${scanned}`,
    );
  }
  if (r.unreadableCount > 0) {
    line(io.stdout, `${plural(r.unreadableCount, 'entry', 'entries')} could not be checked (encrypted with a key this process lacks, payload gone, malformed):`);
    for (const u of r.unreadable.slice(0, SAMPLE_SIZE)) line(io.stdout, `  ${esc(u.stream)} ${esc(u.entryId)}: ${truncate(esc(u.reason), 120)}`);
  }
  if (r.verification) {
    const v = r.verification;
    line(io.stdout, `Verification scan: ${plural(v.remaining, 'entry', 'entries')} of the subject remain (${plural(v.entriesScanned, 'entry', 'entries')} read again)`);
  }
}

async function retention(io: CliIo, flags: ReportFlags): Promise<void> {
  const streams = {
    keyPrefix: flags.prefix,
    ...(flags.maxLen === undefined ? {} : { maxLen: flags.maxLen }),
    ...(flags.retentionMs === undefined ? {} : { retentionMs: flags.retentionMs }),
    ...(flags.trimming === undefined ? {} : { trimming: flags.trimming }),
  };
  const config = { ...configOf(flags), streams };
  const report = await withManager(config, (m) => m.retentionReport({ deadLetterOlderThanDays: flags.dlqOlderThanDays, ...(flags.topics ? { topics: flags.topics } : {}) }));
  if (flags.json) return writeJson(io.stdout, report);
  printRetention(io, report, flags.maxLen !== undefined || flags.retentionMs !== undefined || flags.trimming !== undefined);
}

function printRetention(io: CliIo, r: RetentionReport, policyGiven: boolean): void {
  const p = r.policy;
  const policy = `maxLen ${p.maxLen ?? 'none'}, retentionMs ${p.retentionMs ?? 'none'}, trimming ${p.trimming}, dead letters maxLen ${p.deadLetterMaxLen}`;
  line(io.stdout, `Retention report of ${r.generatedAt}. Policy: ${policy}${policyGiven ? '' : " (the defaults: pass --max-len/--retention-ms/--trimming to state the apps' policy)"}`);
  if (r.streams.length === 0) return line(io.stdout, 'No streams.');
  const rows = r.streams.map((s) => [
    esc(s.stream),
    truncate(esc(s.pattern ?? '-'), 40),
    String(s.length),
    s.oldestAt ?? '-',
    s.entriesAdded === null ? '-' : String(s.entriesAdded),
    s.entriesRemoved === null ? '-' : `${s.entriesRemoved}${s.lossCountExact ? '' : '~'}`,
    String(s.deadLetters.length),
    String(s.deadLetters.olderThanLimit),
  ]);
  line(io.stdout, table(['STREAM', 'PATTERN', 'LENGTH', 'OLDEST', 'ADDED', 'REMOVED', 'DEAD LETTERS', `DLQ > ${r.deadLetterOlderThanDays} D`], rows));
  for (const s of r.streams) {
    if (s.groups.length === 0) continue;
    const lost = s.groups.map((g) => `${esc(g.group)} ${g.lostToTrimming ?? '?'}${g.pendingWithoutData > 0 ? ` (+${g.pendingWithoutData} pending without data)` : ''}`);
    line(io.stdout, `${esc(s.stream)}: lost to trimming: ${lost.join(', ')}`);
  }
  if (r.streams.some((s) => !s.lossCountExact)) line(io.stdout, '~: entries were deleted with XDEL (an erasure, redrive): loss counts are estimates');
}
