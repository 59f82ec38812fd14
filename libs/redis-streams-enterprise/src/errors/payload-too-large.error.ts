import { RedisStreamsError } from './redis-streams.error.js';

/**
 * A payload's encoded size exceeds `streams.maxPayloadBytes`, or its JSON is longer than a JavaScript string can hold
 * (then `sizeBytes` is a lower bound and `cause` the `RangeError` of `JSON.stringify`); nothing was written.
 */
export class PayloadTooLargeError extends RedisStreamsError {
  constructor(
    readonly pattern: string,
    readonly sizeBytes: number,
    readonly maxBytes: number,
    /** `isLowerBound`: the size is at least `sizeBytes` (not measured); `cause`: the RangeError of a JSON that could not be built. */
    options?: { readonly isLowerBound: boolean; readonly cause?: unknown },
  ) {
    super(
      'PAYLOAD_TOO_LARGE',
      options?.cause instanceof RangeError
        ? `Payload for "${pattern}" is too large to send: its JSON would be at least ${sizeBytes} characters, longer than ` +
            'a JavaScript string can hold; nothing was written. Split it, or send a reference to object storage instead'
        : `Payload for "${pattern}" is ${options?.isLowerBound ? 'at least ' : ''}${sizeBytes} bytes, above the limit of ` +
            `${maxBytes} bytes (streams.maxPayloadBytes); nothing was written. Raise streams.maxPayloadBytes (at most ` +
            '536870912, Redis proto-max-bulk-len; payloads above streams.claimCheckThresholdBytes are stored beside the ' +
            'stream), or send a reference to object storage instead',
      { cause: options?.cause },
    );
  }
}
