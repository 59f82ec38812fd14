import { createSecretKey, type KeyObject } from 'node:crypto';
import { KEY_BYTES, KEY_ID, keysFromOptions, type EncryptionOptions } from '../config/payload-codec.options.js';
import { InvalidOptionsError } from '../errors/invalid-options.error.js';

/** One key of the ring: its id (carried by each message, not secret) and its 32 bytes. */
export interface EncryptionKey {
  readonly id: string;
  readonly key: Uint8Array;
}

/**
 * Where encryption keys come from. The default reads `encryption.keys` and `encryption.keysFromEnv`; with
 * `encryption.keyProvider: 'external'` the application provides its own (a KMS client through DI):
 *
 * ```ts
 * @Injectable() class KmsKeys extends EncryptionKeyProvider {
 *   constructor(private readonly kms: MyKmsClient) { super(); }
 *   async getKeys() { return this.kms.dataKeys(); } // [{ id: '2026-01', key: <32 bytes> }, ...], oldest first
 * }
 * @Module({ providers: [MyKmsClient, { provide: EncryptionKeyProvider, useClass: KmsKeys }], exports: [EncryptionKeyProvider] })
 * class KmsModule {}
 * RedisStreamsEnterpriseModule.forRootAsync({ imports: [KmsModule], useFactory: () => ({ encryption: { enabled: true, keyProvider: 'external' } }) })
 * ```
 */
export abstract class EncryptionKeyProvider {
  /**
   * The key ring, oldest first: every key decrypts, the last one encrypts. Called at start and again at most every
   * `encryption.keyRefreshIntervalMs` (when set).
   */
  abstract getKeys(): Promise<readonly EncryptionKey[]> | readonly EncryptionKey[];
}

/** Keys from the options (`encryption.keys`, then the variable named by `encryption.keysFromEnv`). */
export class OptionsKeyProvider extends EncryptionKeyProvider {
  constructor(private readonly encryption: EncryptionOptions) {
    super();
  }

  /** @throws InvalidOptionsError when a key is malformed (validation checked them already at start). */
  getKeys(): readonly EncryptionKey[] {
    const { keys, problems } = keysFromOptions(this.encryption);
    if (problems.length > 0) throw new InvalidOptionsError(problems);
    return keys;
  }
}

/** The loaded keys: KeyObjects (never printed by util.inspect), looked up by id; the newest encrypts. */
export class KeyRing {
  private readonly byId = new Map<string, KeyObject>();
  readonly currentId: string;

  /** @throws InvalidOptionsError naming the problem (a key's id and length, never its bytes). */
  constructor(keys: readonly EncryptionKey[]) {
    const problems: string[] = [];
    for (const [i, k] of keys.entries()) {
      if (typeof k?.id !== 'string' || !KEY_ID.test(k.id)) problems.push(`key ${i + 1} must have an id of 1-64 characters [A-Za-z0-9._-]`);
      else if (!(k.key instanceof Uint8Array) || k.key.length !== KEY_BYTES) problems.push(`key "${k.id}" must be ${KEY_BYTES} bytes`);
      else if (this.byId.has(k.id)) problems.push(`key id "${k.id}" appears twice`);
      else this.byId.set(k.id, createSecretKey(Buffer.from(k.key)));
    }
    if (keys.length === 0) problems.push('there must be at least one key');
    if (problems.length > 0) {
      throw new InvalidOptionsError(problems.map((p) => ({ path: 'encryption.keyProvider', rule: 'keyRing', message: `encryption keys: ${p}` })));
    }
    this.currentId = keys[keys.length - 1].id;
  }

  get current(): KeyObject {
    return this.byId.get(this.currentId) as KeyObject;
  }

  get(id: string): KeyObject | undefined {
    return this.byId.get(id);
  }

  get size(): number {
    return this.byId.size;
  }
}
