import type { RedisStreamsEnterpriseConfig } from '../config/redis-streams.options.js';
import { resolveConfig } from '../config/validate-options.js';
import { LazyConnection } from '../connection/lazy-connection.js';
import { StreamKeys } from '../connection/stream-keys.js';
import type { ReplayProgress } from '../replay/replay-request.js';
import type { CliOutput } from './cli-context.js';

/** Shows how far a replay got. `stop()` must be called (it clears the bar's line). */
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

/** At most this often: a replay reports progress per page of entries, far more often than anyone can read. */
const REDRAW_MS = 200;
const BAR_WIDTH = 40;
/** ANSI "erase to the end of the line": a shorter line leaves no rest of a longer one. */
const ERASE_LINE = '\x1b[K';

/**
 * Progress bar for a replay, drawn on stderr (one line, redrawn in place with `\r`), only when stderr is a terminal:
 * piped or redirected output gets no control characters. Replay does not know how many entries a range holds (Redis
 * cannot count an id range), so the bar measures time: the position of the last selected entry's timestamp within
 * the range. No timers: it redraws on progress, at most every REDRAW_MS, and `stop()` erases it.
 */
export function replayProgressView(stderr: CliOutput, span: TimeSpan | undefined, now: () => number = Date.now): ProgressView {
  if (stderr.isTTY !== true || !span) return NO_PROGRESS;
  const total = Math.max(1, span.endMs - span.startMs);
  const startedAt = now();
  let drawnAt = Number.NEGATIVE_INFINITY;
  let stopped = false;
  const draw = (p: ReplayProgress) => {
    const at = msOf(p.lastId);
    const fraction = Number.isFinite(at) ? Math.min(1, Math.max(0, (at - span.startMs) / total)) : 0;
    const counts = `${p.scanned} scanned, ${p.replayed} replayed, ${p.skipped} skipped, ${p.failed} failed`;
    const text = `replay |${bar(fraction, barWidth(stderr.columns, counts.length))}| ${Math.floor(fraction * 100)}% | ${counts} | ${eta(now() - startedAt, fraction)}`;
    stderr.write(`\r${text}${ERASE_LINE}`);
    drawnAt = now();
  };
  draw({ scanned: 0, replayed: 0, skipped: 0, failed: 0 });
  return {
    update: (p) => {
      if (!stopped && now() - drawnAt >= REDRAW_MS) draw(p);
    },
    stop: () => {
      if (stopped) return;
      stopped = true;
      stderr.write(`\r${ERASE_LINE}`); // the result is printed on stdout; the bar leaves nothing behind
    },
  };
}

/** The bar's width: BAR_WIDTH, narrower on a narrow terminal (the counts stay readable), never under 10. */
function barWidth(columns: number | undefined, countsLength: number): number {
  const rest = 'replay || 100% |  | ETA 00:00'.length + countsLength;
  return columns === undefined ? BAR_WIDTH : Math.max(10, Math.min(BAR_WIDTH, columns - 1 - rest));
}

function bar(fraction: number, width: number): string {
  const done = Math.round(fraction * width);
  return '\u2588'.repeat(done) + '\u2591'.repeat(width - done);
}

/** Time left at the rate so far: `ETA 01:05`, `ETA 1:02:05`; `ETA --:--` before there is a rate. */
export function eta(elapsedMs: number, fraction: number): string {
  if (fraction <= 0 || elapsedMs <= 0) return 'ETA --:--';
  const s = Math.round((elapsedMs * (1 - fraction)) / fraction / 1_000);
  const mm = String(Math.floor(s / 60) % 60).padStart(2, '0');
  const ss = String(s % 60).padStart(2, '0');
  return s >= 3_600 ? `ETA ${Math.floor(s / 3_600)}:${mm}:${ss}` : `ETA ${mm}:${ss}`;
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
