/**
 * Health of the background work of a server (reading loops, the reclaimer, retries and dead-lettering): a loop that
 * keeps failing (NOPERM, NOSCRIPT, OOM, a Redis that refuses writes) or hangs in one iteration leaves entries pending
 * while messages seem to flow. Each loop reports here; `loopReasons` turns the reports into the sentences of
 * `getStatus().reasons` and of the health indicator.
 */
import { redact } from '../connection/redis-error-codes.js';
import type { BackgroundLoopHealth } from '../runtime/background-loop.js';
import { errorText } from './log-format.js';

/** Failures in a row after which a loop counts as failing (one or two may be a blip: a failover, a reconnect). */
export const FAILING_AFTER = 3;

/** One loop in `getStatus().loops`. */
export interface LoopHealthReport {
  /** What the loop does: `reading`, `reclaiming`, `reading partitions`, `retries`. */
  readonly name: string;
  readonly running: boolean;
  /** Failures in a row (0 when its last run completed). */
  readonly failures: number;
  /** When the current run of failures began (ISO 8601); null when not failing. */
  readonly failingSince: string | null;
  /** The last error of the current run of failures: redacted, control characters escaped, at most 300 characters. */
  readonly lastError: string | null;
  /** How long its current iteration has run (ms); null between iterations or when not tracked. */
  readonly busyMs: number | null;
  /** An iteration running longer than this counts as stuck; null: never. */
  readonly stuckAfterMs: number | null;
}

/** Error text fit for a status or a log: credentials removed, control characters escaped, bounded. */
export function safeErrorText(error: unknown, max = 300): string {
  const text = redact(errorText(error)); // errorText escapes control characters
  return text.length > max ? `${text.slice(0, max)}…` : text;
}

/** The report of a BackgroundLoop. */
export function loopReport(name: string, health: BackgroundLoopHealth, stuckAfterMs: number | null): LoopHealthReport {
  return {
    name,
    running: health.running,
    failures: health.failures,
    failingSince: health.failingSinceMs === null ? null : new Date(health.failingSinceMs).toISOString(),
    lastError: health.failures > 0 ? safeErrorText(health.lastError) : null,
    busyMs: health.busyMs,
    stuckAfterMs,
  };
}

/** Why a loop is unhealthy: failing FAILING_AFTER times in a row, or stuck in one iteration. Empty when it is fine. */
export function loopReasons(report: LoopHealthReport): string[] {
  const reasons: string[] = [];
  if (report.failures >= FAILING_AFTER) {
    reasons.push(`${report.name} keeps failing (${report.failures} times in a row since ${report.failingSince}): ${report.lastError}`);
  }
  if (report.stuckAfterMs !== null && report.busyMs !== null && report.busyMs > report.stuckAfterMs) {
    reasons.push(`${report.name} is stuck: one pass has run for ${Math.round(report.busyMs / 1000)} s (limit ${Math.round(report.stuckAfterMs / 1000)} s)`);
  }
  return reasons;
}

/**
 * Failures in a row of work that is not a loop of its own (retries and dead-lettering run inside the handlers'
 * settlement): any success ends the run.
 */
export class FailureStreak {
  private failures = 0;
  private since?: number;
  private lastError?: unknown;

  constructor(private readonly now: () => number = Date.now) {}

  failed(error: unknown): void {
    if (this.failures++ === 0) this.since = this.now();
    this.lastError = error;
  }

  succeeded(): void {
    this.failures = 0;
    this.lastError = undefined;
  }

  health(): BackgroundLoopHealth {
    return { running: true, failures: this.failures, failingSinceMs: this.failures > 0 ? (this.since ?? null) : null, lastError: this.lastError, busyMs: null };
  }
}
