import cliProgress from 'cli-progress';
import type { RedisStreamsEnterpriseConfig } from '../config/redis-streams.options.js';
import { resolveConfig } from '../config/validate-options.js';
import { LazyConnection } from '../connection/lazy-connection.js';
import { StreamKeys } from '../connection/stream-keys.js';
import type { ReplayProgress } from '../replay/replay-request.js';
import type { CliOutput } from './cli-context.js';

/** Shows how far a replay got. `stop()` must be called (it removes the bar's timers). */
export interface ProgressView {
  update(progress: ReplayProgress): void;
  stop(): void;
}

const NO_PROGRESS: ProgressView = { update: () => undefined, stop: () => undefined };

/** The time range a replay covers, in ms: where the progress bar starts and ends. */
export interface TimeSpan {
  readonly startMs: number;
  readonly endMs: number;
}

const msOf = (entryId: string | undefined) => (entryId ? Number(entryId.split('-')[0]) : Number.NaN);

/**
 * Progress bar for a replay, drawn on stderr with cli-progress, only when stderr is a terminal. Replay does not know
 * how many entries a range holds (Redis cannot count an id range), so the bar measures time: the position of the last
 * selected entry's timestamp within the range.
 */
export function replayProgressView(stderr: CliOutput, span: TimeSpan | undefined): ProgressView {
  if (stderr.isTTY !== true || !span) return NO_PROGRESS;
  const total = Math.max(1, span.endMs - span.startMs);
  const bar = new cliProgress.SingleBar(
    {
      stream: stderr as NodeJS.WritableStream,
      format: 'replay |{bar}| {percentage}% | {scanned} scanned, {replayed} replayed, {skipped} skipped, {failed} failed | {eta_formatted}',
      hideCursor: true,
      clearOnComplete: true,
      fps: 5,
    },
    cliProgress.Presets.shades_classic,
  );
  bar.start(total, 0, { scanned: 0, replayed: 0, skipped: 0, failed: 0 });
  let stopped = false;
  return {
    update: (p) => {
      if (stopped) return;
      const at = msOf(p.lastId);
      const value = Number.isFinite(at) ? Math.min(total, Math.max(0, at - span.startMs)) : 0;
      bar.update(value, { scanned: p.scanned, replayed: p.replayed, skipped: p.skipped, failed: p.failed });
    },
    stop: () => {
      if (stopped) return;
      stopped = true;
      bar.stop();
    },
  };
}

/**
 * The time span of a replay for the progress bar: the given bounds, else the first / last entry of the streams.
 * Best effort: on any problem there is no bar (the replay itself reports connection errors).
 */
export async function replayTimeSpan(
  config: RedisStreamsEnterpriseConfig,
  patterns: readonly string[],
  startMs: number | undefined,
  endMs: number | undefined,
): Promise<TimeSpan | undefined> {
  let connection: LazyConnection | undefined;
  try {
    const resolved = resolveConfig(config);
    const keys = new StreamKeys(resolved.streams.keyPrefix);
    connection = new LazyConnection(resolved.connection, 'cli-progress', 'replay progress bar');
    const redis = await connection.get();
    let first = Number.POSITIVE_INFINITY;
    let last = 0;
    for (const pattern of patterns) {
      const stream = keys.stream(pattern);
      const oldest = startMs === undefined ? msOf((await redis.xrange(stream, '-', '+', 'COUNT', 1))[0]?.[0]) : Number.NaN;
      const newest = endMs === undefined ? msOf((await redis.xrevrange(stream, '+', '-', 'COUNT', 1))[0]?.[0]) : Number.NaN;
      if (Number.isFinite(oldest)) first = Math.min(first, oldest); // an empty stream has neither
      if (Number.isFinite(newest)) last = Math.max(last, newest);
    }
    const span = { startMs: startMs ?? first, endMs: endMs ?? last };
    return Number.isFinite(span.startMs) && Number.isFinite(span.endMs) && span.endMs >= span.startMs ? span : undefined;
  } catch {
    return undefined; // no bar; the replay reports the problem itself
  } finally {
    await connection?.close();
  }
}
