import { RedisStreamsError } from './redis-streams.error.js';

/** A payload's encoded size exceeds `streams.maxPayloadBytes`; nothing was written. */
export class PayloadTooLargeError extends RedisStreamsError {
  constructor(
    readonly pattern: string,
    readonly sizeBytes: number,
    readonly maxBytes: number,
  ) {
    super(
      'PAYLOAD_TOO_LARGE',
      `Payload for "${pattern}" is ${sizeBytes} bytes, above the limit of ${maxBytes} bytes (streams.maxPayloadBytes); ` +
        'nothing was written. Raise streams.maxPayloadBytes (at most 536870912, Redis proto-max-bulk-len; payloads above ' +
        'streams.claimCheckThresholdBytes are stored beside the stream), or send a reference to object storage instead',
    );
  }
}
