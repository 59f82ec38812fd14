import { describe, expect, it } from '@jest/globals';
import { BackoffOptions } from '../config/retry.options.js';
import { DEAD_LETTER_REASONS, isDeadLetterReason } from '../dead-letter/dead-letter-reason.js';
import { decideAfterFailure } from './settlement-policy.js';

const fixed: BackoffOptions = Object.assign(new BackoffOptions(), { type: 'fixed', delayMs: 40, maxDelayMs: 40, jitter: 0 });
const exponential: BackoffOptions = Object.assign(new BackoffOptions(), { type: 'exponential', delayMs: 100, maxDelayMs: 1_000, jitter: 0 });

describe('decideAfterFailure', () => {
  it('dead-letters on the last attempt, recording how many were made', () => {
    expect(decideAfterFailure({ attempt: 3, maxAttempts: 3, inPlace: false, backoff: fixed })).toEqual({ action: 'dead-letter', reason: 'max-deliveries', attempts: 3 });
    // A redelivery counter past the limit (attempts lowered between runs) dead-letters too.
    expect(decideAfterFailure({ attempt: 9, maxAttempts: 3, inPlace: true, backoff: fixed })).toMatchObject({ action: 'dead-letter', attempts: 9 });
  });

  it('retries in place on ordered topics and schedules a redelivery elsewhere, with the backoff of the failed attempt', () => {
    expect(decideAfterFailure({ attempt: 1, maxAttempts: 5, inPlace: true, backoff: exponential })).toEqual({ action: 'retry-in-place', delayMs: 100 });
    expect(decideAfterFailure({ attempt: 3, maxAttempts: 5, inPlace: false, backoff: exponential })).toEqual({ action: 'schedule-retry', delayMs: 400 });
    expect(decideAfterFailure({ attempt: 4, maxAttempts: 9, inPlace: false, backoff: exponential })).toEqual({ action: 'schedule-retry', delayMs: 800 });
  });

  it('uses the delay a handler asked for (ctx.nack(delayMs)) instead of the backoff, but never past the last attempt', () => {
    expect(decideAfterFailure({ attempt: 1, maxAttempts: 3, inPlace: false, backoff: exponential, requestedDelayMs: 7 })).toEqual({ action: 'schedule-retry', delayMs: 7 });
    expect(decideAfterFailure({ attempt: 3, maxAttempts: 3, inPlace: false, backoff: exponential, requestedDelayMs: 7 }).action).toBe('dead-letter');
  });
});

describe('dead-letter reasons', () => {
  it('are one closed list', () => {
    expect(DEAD_LETTER_REASONS).toEqual(['max-deliveries', 'decode-failed', 'no-handler', 'schema-invalid', 'causal-timeout', 'invalid-reply-to', 'rejected', 'decrypt-failed', 'codec-unavailable']);
    expect(isDeadLetterReason('rejected')).toBe(true);
    expect(isDeadLetterReason('upcast-failed')).toBe(false);
  });
});
