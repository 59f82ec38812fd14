import type { BackoffOptions } from '../config/retry.options.js';

/**
 * Delay before the attempt that follows `failedAttempt` (1 = the first delivery failed).
 * Exponential: delayMs * 2^(failedAttempt-1), capped at maxDelayMs; then spread by +-jitter.
 */
export function backoffDelayMs(options: BackoffOptions, failedAttempt: number, random: () => number = Math.random): number {
  const base =
    options.type === 'fixed'
      ? options.delayMs
      : Math.min(options.maxDelayMs, options.delayMs * 2 ** Math.max(0, Math.min(failedAttempt - 1, 40)));
  const spread = base * options.jitter * (2 * random() - 1);
  return Math.max(0, Math.round(Math.min(options.maxDelayMs, base + spread)));
}
