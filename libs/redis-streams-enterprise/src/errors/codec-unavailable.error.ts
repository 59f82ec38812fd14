import { MessageDecodeError } from './message-decode.error.js';

/**
 * A message was written with a compression codec this consumer cannot apply: an unknown codec name in `enc`, or a
 * known one whose optional package (`lz4-napi`, `snappy`) is not installed here. Dead-lettered with reason
 * `codec-unavailable`; install the package and redrive it.
 */
export class CodecUnavailableError extends MessageDecodeError {
  constructor(
    /** The codec named by the entry (at most 32 characters of it). */
    readonly codec: string,
    reason: string,
    options?: { cause?: unknown },
  ) {
    super(reason, options, 'CODEC_UNAVAILABLE');
  }
}
