/**
 * Why a message was dead-lettered, as stored in `rse.dlq.reason`:
 * - `max-deliveries`: the handler failed on every attempt (`retry.attempts`, or `ordering.retryAttempts` in place);
 * - `decode-failed`: the entry is not a message of this wire format (bad JSON, no `data`, unknown version,
 *   oversized, invalid headers, a claim-checked payload that is gone);
 * - `no-handler`: no handler is registered for its pattern;
 * - `schema-invalid`: the payload does not match its schema (strict), or cannot be mapped to the version its handler reads;
 * - `causal-timeout`: its dependencies were not handled within `ordering.timeoutMs` (`causalTimeoutPolicy: 'deadLetter'`);
 * - `invalid-reply-to`: a request whose `replyTo` is not a reply stream of this deployment (`<prefix>:{reply:<id>}`);
 *   nothing was written to it;
 * - `rejected`: the handler called `ctx.deadLetter(reason)`;
 * - `decrypt-failed`: an encrypted message that cannot be decrypted (tampered, truncated, an unknown key id, moved
 *   from another pattern's stream, or encryption off here), or a plaintext one with `encryption.acceptPlaintext` false;
 * - `codec-unavailable`: compressed with a codec this consumer lacks (an unknown name, or `lz4-napi` / `snappy` not
 *   installed).
 */
export const DEAD_LETTER_REASONS = [
  'max-deliveries',
  'decode-failed',
  'no-handler',
  'schema-invalid',
  'causal-timeout',
  'invalid-reply-to',
  'rejected',
  'decrypt-failed',
  'codec-unavailable',
] as const;

export type DeadLetterReason = (typeof DEAD_LETTER_REASONS)[number];

export function isDeadLetterReason(value: string): value is DeadLetterReason {
  return (DEAD_LETTER_REASONS as readonly string[]).includes(value);
}
