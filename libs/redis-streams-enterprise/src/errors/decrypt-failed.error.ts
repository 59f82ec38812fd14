import { MessageDecodeError } from './message-decode.error.js';

/**
 * An encrypted message (or reply) could not be decrypted: it was tampered with or truncated, it names a key id the
 * key ring does not hold, or it was moved to a stream (or reply stream) other than the one it was written for. The
 * message never says more than why: no plaintext, no key material. Such messages are dead-lettered with reason
 * `decrypt-failed` and never reach a handler.
 */
export class DecryptFailedError extends MessageDecodeError {
  constructor(reason: string, options?: { cause?: unknown }) {
    super(reason, options, 'DECRYPT_FAILED');
  }
}
