import { createCipheriv, createDecipheriv, randomBytes, type KeyObject } from 'node:crypto';
import { DecryptFailedError } from '../errors/decrypt-failed.error.js';

/** Codec name of AES-256-GCM in a message's `enc` chain. */
export const AES_256_GCM = 'aes256gcm';
const IV_BYTES = 12;
const TAG_BYTES = 16;

/**
 * What the ciphertext is bound to (GCM's additional authenticated data): the kind of field, the pattern (or reply
 * stream), the message id, the key id and the codec chain. A ciphertext moved to another stream, another message or
 * another field, or relabelled, fails authentication. JSON of an array, so no two bindings serialize alike.
 */
export function bindingOf(kind: 'message' | 'headers' | 'reply', scope: string, messageId: string, kid: string, enc: string): Buffer {
  return Buffer.from(JSON.stringify(['rse/1', kind, scope, messageId, kid, enc]), 'utf8');
}

/** IVs drawn per call to the CSPRNG: one randomBytes call costs about as much as encrypting 1 KB. */
const IVS_PER_DRAW = 256;

/**
 * Random 96-bit IVs, never a counter: producers in many processes share a key, and a repeated IV under one key would
 * reveal plaintext. They are drawn from the CSPRNG IVS_PER_DRAW at a time and each handed out once.
 */
export class RandomIvs {
  private pool = Buffer.alloc(0);
  private offset = 0;

  next(): Buffer {
    if (this.offset + IV_BYTES > this.pool.length) {
      this.pool = randomBytes(IV_BYTES * IVS_PER_DRAW);
      this.offset = 0;
    }
    const iv = this.pool.subarray(this.offset, this.offset + IV_BYTES);
    this.offset += IV_BYTES;
    return iv;
  }
}

/** Encrypts with the next random IV. Output: IV (12 bytes) | ciphertext | tag (16 bytes). */
export function seal(key: KeyObject, plaintext: Buffer, aad: Buffer, ivs: RandomIvs): Buffer {
  const iv = ivs.next();
  const cipher = createCipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
  cipher.setAAD(aad);
  const body = cipher.update(plaintext);
  const last = cipher.final();
  return Buffer.concat([iv, body, last, cipher.getAuthTag()]); // one copy of the ciphertext, not two
}

/**
 * Decrypts and authenticates what `seal` produced.
 * @throws DecryptFailedError when it is truncated, tampered with, or bound to something else (no detail of the
 *   plaintext or key is given, nor available).
 */
export function open(key: KeyObject, sealed: Buffer, aad: Buffer): Buffer {
  if (sealed.length < IV_BYTES + TAG_BYTES) throw new DecryptFailedError(`the ciphertext is truncated (${sealed.length} bytes)`);
  const decipher = createDecipheriv('aes-256-gcm', key, sealed.subarray(0, IV_BYTES), { authTagLength: TAG_BYTES });
  decipher.setAAD(aad);
  decipher.setAuthTag(sealed.subarray(sealed.length - TAG_BYTES));
  try {
    return Buffer.concat([decipher.update(sealed.subarray(IV_BYTES, sealed.length - TAG_BYTES)), decipher.final()]);
  } catch {
    // The only failure here is authentication; the crypto error adds nothing, and no detail of it is passed on.
    throw new DecryptFailedError('authentication failed: the ciphertext was tampered with or truncated, or moved from another stream or message');
  }
}
