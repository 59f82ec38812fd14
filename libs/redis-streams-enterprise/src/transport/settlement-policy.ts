/**
 * The one place that decides what happens to a message whose handling did not succeed: retry it in place (ordered
 * topics: its key waits, nothing overtakes it), schedule a retry (the entry stays pending and the reclaimer takes it
 * when it falls due), or dead-letter it (reasons: dead-letter/dead-letter-reason.ts). Pure: the Settler carries the
 * decision out in Redis, the MessageProcessor loops for in-place retries.
 */
import type { BackoffOptions } from '../config/retry.options.js';
import { backoffDelayMs } from '../runtime/backoff.js';

/** What to do after a failed attempt. */
export type FailureDecision =
  | { readonly action: 'dead-letter'; readonly reason: 'max-deliveries'; readonly attempts: number }
  | { readonly action: 'retry-in-place'; readonly delayMs: number }
  | { readonly action: 'schedule-retry'; readonly delayMs: number };

export interface FailedAttempt {
  /** The attempt that failed, counting from 1 (Redis's delivery counter, or the in-place attempt). */
  readonly attempt: number;
  /** Attempts allowed in all. */
  readonly maxAttempts: number;
  /** Ordered topics retry in place instead of leaving the entry pending for a later redelivery. */
  readonly inPlace: boolean;
  readonly backoff: BackoffOptions;
  /** A delay the handler asked for (`ctx.nack(delayMs)`), instead of the backoff. */
  readonly requestedDelayMs?: number;
}

export function decideAfterFailure(failed: FailedAttempt): FailureDecision {
  if (failed.attempt >= failed.maxAttempts) return { action: 'dead-letter', reason: 'max-deliveries', attempts: failed.attempt };
  const delayMs = failed.requestedDelayMs ?? backoffDelayMs(failed.backoff, failed.attempt);
  return failed.inPlace ? { action: 'retry-in-place', delayMs } : { action: 'schedule-retry', delayMs };
}
