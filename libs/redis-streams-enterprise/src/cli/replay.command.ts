import type { RedisStreamsEnterpriseConfig } from '../config/redis-streams.options.js';
import type { ReplayedMessage, ReplayResult, ReplayStop, ReplayTarget } from '../replay/replay-request.js';
import { CliError, configOf, type CliIo, type GlobalOptions } from './cli-context.js';
import { option, type CommandSpec, type Invocation } from './command-line.js';
import { duration, idTime, line, moreLine, plural, SAMPLE_SIZE, table, writeJson } from './format.js';
import { parseEntryId, parsePositiveInt, parseTime } from './parse.js';
import type { ProgressView } from './progress.js';
import type { CliRun } from './cli-context.js';

interface ReplayFlags extends GlobalOptions {
  readonly stream: string[];
  readonly from?: number;
  readonly to?: number;
  readonly startId?: string;
  readonly endId?: string;
  readonly filter?: string;
  readonly max?: number;
  readonly toStream?: string;
  readonly resetGroup?: string;
  readonly dryRun?: boolean;
  readonly timeoutMs?: number;
}

/** What a dry run shows of each message it would replay. */
interface SampleEntry {
  readonly stream: string;
  readonly entryId: string;
  readonly pattern: string;
  readonly messageId: string;
}

const STOPPED: Record<ReplayStop, string> = {
  end: 'end of the range',
  maxMessages: 'the message limit',
  timeout: 'the time limit (--timeout-ms)',
  aborted: 'Ctrl-C (cancelled)',
};

const idMs = (id: string | undefined) => (id ? Number(id.split('-')[0]) : undefined);

function targetOf(flags: ReplayFlags): ReplayTarget {
  if (flags.toStream !== undefined) {
    if (flags.stream.includes(flags.toStream)) {
      // The copy would be read again by the same replay and copied over and over until a limit stops it.
      throw new CliError(`--to-stream "${flags.toStream}" is also a --stream source; copy into another pattern`);
    }
    return { stream: flags.toStream };
  }
  if (flags.resetGroup !== undefined) return { resetGroup: flags.resetGroup };
  throw new CliError(
    'replay needs a target: --to-stream <pattern> (copy) or --reset-group <group> (rewind a consumer group). ' +
      "Replaying into an app's handlers needs the running app: use ReplayManager there",
  );
}

function configFor(flags: ReplayFlags): RedisStreamsEnterpriseConfig {
  const replay = {
    // replay.enabled gates replay inside apps; running this command is the operator's explicit decision to replay.
    enabled: true,
    ...(flags.max === undefined ? {} : { maxReplayMessages: flags.max }), // --max lifts the library's default cap
    ...(flags.timeoutMs === undefined ? {} : { replayTimeout: flags.timeoutMs }),
  };
  return { ...configOf(flags), replay };
}

function describeTarget(target: ReplayTarget): string {
  if (target === 'handlers') return 'handlers';
  return 'stream' in target ? `stream of "${target.stream}"` : `group "${target.resetGroup}"`;
}

/** `replay`: copy a range of messages into another stream, or rewind a consumer group to the start of a range. */
export function replayCommand(io: CliIo, run: CliRun): CommandSpec {
  return {
    name: 'replay',
    summary: 'copy a time or id range of messages into another stream, or rewind a consumer group',
    description:
      'replay stored messages of one or more patterns, selected by time or entry id range, into another stream ' +
      '(--to-stream) or by rewinding a consumer group (--reset-group). Replaying into handlers is not available ' +
      "from the command line (it needs the running Nest app: use ReplayManager with target 'handlers' there). " +
      'Ctrl-C cancels and prints what was done so far.',
    options: [
      option('-s, --stream <pattern...>', 'pattern(s) whose streams are replayed (several: merged in time order)', { required: true }),
      option('--from <iso|ms>', 'entries written at or after this time (ISO 8601 or epoch ms)', { parse: parseTime }),
      option('--to <iso|ms>', 'entries written at or before this time (ISO 8601 or epoch ms)', { parse: parseTime }),
      option('--start-id <id>', 'first entry id, inclusive (wins over --from)', { parse: parseEntryId }),
      option('--end-id <id>', 'last entry id, inclusive (wins over --to)', { parse: parseEntryId }),
      option('--filter <glob>', 'only messages whose pattern matches this glob, e.g. "user.*.created" (not with --reset-group)', {
        conflicts: ['resetGroup'],
      }),
      option('--max <n>', 'replay at most this many messages (default: the library cap replay.maxReplayMessages, 100000)', {
        parse: parsePositiveInt,
        conflicts: ['resetGroup'],
      }),
      option('--to-stream <pattern>', "target: copy the messages into this pattern's stream; a repeated copy adds nothing twice", {
        conflicts: ['resetGroup'],
      }),
      option(
        '--reset-group <group>',
        "target: position this consumer group (created if missing) just before the range's first entry, so it re-consumes " +
          'everything from there on; its pending entries stay as they are (--to/--end-id only bound the count reported)',
      ),
      option('--dry-run', 'only report what would be replayed (count and the first 20 entries); write nothing'),
      option('--timeout-ms <ms>', 'stop after this long (default: replay.replayTimeout, 300000)', { parse: parsePositiveInt }),
    ],
    action: (invocation) => replay(io, run, invocation),
  };
}

async function replay(io: CliIo, run: CliRun, { flags: parsed }: Invocation): Promise<void> {
  const flags = parsed as unknown as ReplayFlags;
  const target = targetOf(flags);
  const dryRun = flags.dryRun === true;
  const config = configFor(flags);
  // Loaded on use, so `--help` and usage errors do not pay for loading Nest, ioredis and class-validator.
  const [{ ReplayManager }, { replayProgressView, replayTimeSpan }] = await Promise.all([
    import('../replay/replay.manager.js'),
    import('./progress.js'),
  ]);
  const manager = new ReplayManager(config); // validates the configuration (throws InvalidOptionsError) before any I/O
  const controller = new AbortController();
  const sample: SampleEntry[] = [];
  // A dry run reports only counts; the predicate (called for each message the glob selected, until the limit)
  // records the first SAMPLE_SIZE of them. It decodes each message, so undecodable entries count as failed.
  const sampling = dryRun && typeof target === 'object' && 'stream' in target;
  const recordSample = (m: ReplayedMessage) => {
    if (sample.length < SAMPLE_SIZE) sample.push({ stream: m.stream, entryId: m.entryId, pattern: m.pattern, messageId: m.messageId });
    return true;
  };
  let result: ReplayResult;
  let progress: ProgressView | undefined;
  const unregister = io.onInterrupt?.(() => controller.abort());
  try {
    const span =
      io.stderr.isTTY === true
        ? await replayTimeSpan(config, flags.stream, flags.startId ? idMs(flags.startId) : flags.from, flags.endId ? idMs(flags.endId) : flags.to)
        : undefined;
    progress = replayProgressView(io.stderr, span);
    const view = progress;
    result = await manager.replayMessages({
      streamName: flags.stream,
      ...(flags.from === undefined ? {} : { startTime: flags.from }),
      ...(flags.to === undefined ? {} : { endTime: flags.to }),
      ...(flags.startId === undefined ? {} : { startId: flags.startId }),
      ...(flags.endId === undefined ? {} : { endId: flags.endId }),
      ...(flags.filter === undefined ? {} : { filterPattern: flags.filter }),
      ...(flags.max === undefined ? {} : { maxMessages: flags.max }),
      ...(sampling ? { filter: recordSample } : {}),
      target,
      dryRun,
      signal: controller.signal,
      onProgress: (p) => view.update(p),
    });
  } finally {
    progress?.stop();
    unregister?.();
    await manager.close();
  }
  if (result.stoppedBy === 'aborted') run.exitCode = 130;
  else if (result.stoppedBy === 'timeout' || (result.stoppedBy === 'maxMessages' && flags.max === undefined)) run.exitCode = 1;
  if (flags.json) {
    writeJson(io.stdout, { streams: flags.stream, target, ...result, ...(sampling ? { sample } : {}) });
  } else {
    printResult(io, flags, target, result, sample, manager.config.replay.maxReplayMessages);
  }
}

function printResult(io: CliIo, flags: ReplayFlags, target: ReplayTarget, r: ReplayResult, sample: readonly SampleEntry[], cap: number): void {
  const out = io.stdout;
  const sources = flags.stream.map((s) => `"${s}"`).join(', ');
  const reset = typeof target === 'object' && 'resetGroup' in target;
  if (reset) {
    const entries = plural(r.replayed, 'entry', 'entries');
    const counted = r.replayed >= cap ? ` (counted up to ${cap})` : '';
    if (r.dryRun) line(out, `Dry run: group "${target.resetGroup}" would re-consume ${sources} from ${r.firstId ?? 'the end'} on: ${entries} in the range${counted} (nothing was changed)`);
    else line(out, `Reset group "${target.resetGroup}" of ${sources}: it re-consumes from ${r.firstId ?? 'the end (the range is empty)'} on; ${entries} in the range${counted}`);
  } else if (r.dryRun) {
    line(out, `Dry run: would replay ${plural(r.replayed, 'message')} of ${sources} into the ${describeTarget(target)} (nothing was written)`);
    if (sample.length > 0) {
      line(out, table(['ENTRY ID', 'WRITTEN AT', 'PATTERN', 'MESSAGE ID'], sample.map((s) => [s.entryId, idTime(s.entryId), s.pattern, s.messageId])));
      moreLine(out, sample.length, r.replayed);
    }
  } else {
    line(out, `Replayed ${plural(r.replayed, 'message')} of ${sources} into the ${describeTarget(target)} (entries copied before are skipped, not copied again)`);
  }
  const rows: [string, string][] = [
    ['scanned', String(r.scanned)],
    ['replayed', String(r.replayed)],
    ['skipped', `${r.skipped} (${flags.filter ? 'not matching --filter, or ' : ''}copied by an earlier replay)`],
    ['failed', String(r.failed)],
    ['first id', r.firstId ? `${r.firstId} (${idTime(r.firstId)})` : '-'],
    ['last id', r.lastId ? `${r.lastId} (${idTime(r.lastId)})` : '-'],
    ['stopped by', STOPPED[r.stoppedBy]],
    ['duration', duration(r.durationMs)],
  ];
  for (const [key, value] of rows) line(out, `  ${key.padEnd(11)}${value}`);
  for (const invalid of r.validation?.invalid.slice(0, 5) ?? []) line(out, `  invalid    ${invalid.stream} ${invalid.entryId}: ${invalid.reason}`);
  if (r.stoppedBy === 'aborted') line(io.stderr, 'Cancelled: the result above is what was done before Ctrl-C.');
  if (r.stoppedBy === 'timeout' || (r.stoppedBy === 'maxMessages' && flags.max === undefined)) {
    const next = r.lastId ? ` --start-id ${r.lastId}` : '';
    line(io.stderr, `error: the replay stopped at ${STOPPED[r.stoppedBy]} before the end of the range; continue with${next} (raise --max / --timeout-ms)`);
  }
}
