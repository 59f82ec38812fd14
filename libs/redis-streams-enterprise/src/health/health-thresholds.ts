import type { RedisStreamsServerStatus } from '../transport/server-status.js';

/**
 * Readiness limits per consumed stream. A consumer over them is not ready: an alert, or a rollout that waits until a
 * new version keeps up. Note that an unready consumer still reads (Kubernetes readiness only takes a pod out of a
 * Service's endpoints): scale on lag with KEDA or an HPA on the lag metric instead.
 */
export interface RedisStreamsReadinessThresholds {
  /** Most entries not yet delivered to the group on one stream. @default undefined (no limit) */
  readonly maxLag?: number;
  /** Most entries delivered and not yet acknowledged on one stream. @default undefined (no limit) */
  readonly maxPending?: number;
  /** Oldest age of a pending entry (the time part of its id, against Redis's clock). @default undefined (no limit) */
  readonly maxOldestPendingMs?: number;
}

/** Why the streams of a status exceed the thresholds: one sentence per stream and limit. */
export function thresholdReasons(status: RedisStreamsServerStatus, limits: RedisStreamsReadinessThresholds): string[] {
  const reasons: string[] = [];
  for (const s of status.streams) {
    if (limits.maxLag !== undefined && s.lag !== null && s.lag > limits.maxLag) {
      reasons.push(`lag of ${s.stream} is ${s.lag} entries (limit ${limits.maxLag})`);
    }
    if (limits.maxPending !== undefined && s.pending !== null && s.pending > limits.maxPending) {
      reasons.push(`${s.pending} entries of ${s.stream} are pending (limit ${limits.maxPending})`);
    }
    if (limits.maxOldestPendingMs !== undefined && s.oldestPendingMs !== null && s.oldestPendingMs > limits.maxOldestPendingMs) {
      reasons.push(`the oldest pending entry of ${s.stream} is ${s.oldestPendingMs} ms old (limit ${limits.maxOldestPendingMs} ms)`);
    }
  }
  return reasons;
}
