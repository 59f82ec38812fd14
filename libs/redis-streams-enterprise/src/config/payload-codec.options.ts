import { Type } from 'class-transformer';
import { ArrayMaxSize, IsArray, IsBoolean, IsIn, IsInt, IsOptional, IsString, Matches, Max, Min, ValidateNested } from 'class-validator';
import type { ConfigViolation } from '../errors/invalid-options.error.js';

/*
 * End-to-end encryption and compression of payloads (the payload-codec capability). This file types, validates and
 * defaults the two sections; the key material itself is checked here too, so a wrong key fails the start naming its
 * path, never printing the key.
 */

/** Key ids: safe to log and to carry in the `kid` field. */
export const KEY_ID = /^[A-Za-z0-9._-]{1,64}$/;
/** AES-256 keys are 32 bytes. */
export const KEY_BYTES = 32;
const HEADER_NAME = /^[A-Za-z0-9._-]{1,128}$/;

/** One key of the ring. */
export class EncryptionKeyOptions {
  /** Key id, written to each message's `kid` field (not secret): `[A-Za-z0-9._-]{1,64}`. */
  @IsString()
  @Matches(KEY_ID, { message: 'must be 1-64 characters [A-Za-z0-9._-]' })
  id!: string;

  /** The key: 32 random bytes, base64-encoded (`openssl rand -base64 32`). Never logged. */
  @IsString()
  key!: string;
}

/** End-to-end encryption of payloads with AES-256-GCM: Redis only ever holds ciphertext. */
export class EncryptionOptions {
  /** Encrypt what this app sends (payloads, chosen headers, replies) and decrypt what it receives. @default false */
  @IsBoolean()
  enabled = false;

  /**
   * Where keys come from. `options`: `keys` and/or the variable named by `keysFromEnv`; `external`: an
   * `EncryptionKeyProvider` the application provides (a KMS client, through `forRootAsync({ imports })` or the
   * server's and client's constructors).
   * @default 'options'
   */
  @IsIn(['options', 'external'])
  keyProvider: 'options' | 'external' = 'options';

  /** The key ring, oldest first: every key decrypts, the last one encrypts. @default [] */
  @IsArray()
  @ArrayMaxSize(100)
  @ValidateNested({ each: true })
  @Type(() => EncryptionKeyOptions)
  keys: EncryptionKeyOptions[] = [];

  /**
   * Name of an environment variable holding more keys as `id:base64key,id:base64key` (oldest first), appended after
   * `keys`.
   * @default undefined
   */
  @IsOptional()
  @IsString()
  @Matches(/^[A-Za-z_][A-Za-z0-9_]{0,127}$/, { message: 'must be an environment variable name' })
  keysFromEnv?: string;

  /** Names of headers whose values are encrypted too (the others stay readable, for routing and tracing). @default [] */
  @IsArray()
  @ArrayMaxSize(64)
  @IsString({ each: true })
  @Matches(HEADER_NAME, { each: true, message: 'each must be a header name ([A-Za-z0-9._-]{1,128})' })
  encryptHeaders: string[] = [];

  /**
   * Whether a consumer handles messages that arrive unencrypted (a producer without encryption, or a foreign one
   * writing plain entries). false: they are dead-lettered with reason `decrypt-failed`.
   * @default true
   */
  @IsBoolean()
  acceptPlaintext = true;

  /**
   * How often, at most, the keys are read again from their source (an `external` provider or the environment): when
   * a message names a key id the ring does not hold, and on publish, so a rotation reaches running apps. 0: read
   * once at start.
   * @default 0
   */
  @IsInt()
  @Min(0)
  @Max(86_400_000)
  keyRefreshIntervalMs = 0;
}

/** Compression of payloads above a size (compressed before encryption when both are on). */
export class CompressionOptions {
  /**
   * Codec for payloads this app sends. `lz4` and `snappy` need their optional packages (`lz4-napi`, `snappy`);
   * `gzip` is built in. Each message records its codec, so consumers read every codec whatever they send with.
   * @default 'none'
   */
  @IsIn(['none', 'gzip', 'lz4', 'snappy'])
  codec: 'none' | 'gzip' | 'lz4' | 'snappy' = 'none';

  /** Payloads whose JSON is at least this many bytes are compressed; smaller ones are sent as they are. @default 1024 */
  @IsInt()
  @Min(0)
  @Max(1_073_741_824)
  thresholdBytes = 1_024;
}

/** A key id and its 32 bytes, as read from options or the environment. */
export interface ParsedKey {
  readonly id: string;
  readonly key: Buffer;
}

/** Decodes a base64 key; undefined unless it is exactly 32 bytes. Nothing of the key is ever put in a message. */
export function decodeKey(text: string): Buffer | undefined {
  if (!/^[A-Za-z0-9+/_-]+={0,2}$/.test(text)) return undefined;
  const key = Buffer.from(text, 'base64');
  return key.length === KEY_BYTES ? key : undefined;
}

/**
 * Parses `id:base64key,id:base64key`. Problems name the position, never the key.
 * @returns the keys, or the problems found.
 */
export function parseKeyList(text: string): { keys: ParsedKey[]; problems: string[] } {
  const keys: ParsedKey[] = [];
  const problems: string[] = [];
  text
    .split(',')
    .map((part) => part.trim())
    .filter((part) => part.length > 0)
    .forEach((part, index) => {
      const colon = part.indexOf(':');
      const id = colon < 0 ? '' : part.slice(0, colon);
      const key = colon < 0 ? undefined : decodeKey(part.slice(colon + 1));
      if (!KEY_ID.test(id)) problems.push(`entry ${index + 1} must start with a key id ([A-Za-z0-9._-]{1,64}) and a colon`);
      else if (!key) problems.push(`key "${id}" must be ${KEY_BYTES} bytes, base64-encoded`);
      else keys.push({ id, key });
    });
  return { keys, problems };
}

/** The keys of the `options` source: `keys`, then those of `keysFromEnv`. */
export function keysFromOptions(encryption: EncryptionOptions, env: NodeJS.ProcessEnv = process.env): { keys: ParsedKey[]; problems: ConfigViolation[] } {
  const problems: ConfigViolation[] = [];
  const add = (path: string, rule: string, message: string) => problems.push({ path, rule, message: `${path} ${message}` });
  const keys: ParsedKey[] = [];
  encryption.keys.forEach((k, i) => {
    const key = decodeKey(k.key);
    if (key) keys.push({ id: k.id, key });
    else add(`encryption.keys.${i}.key`, 'keyLength', `must be ${KEY_BYTES} bytes, base64-encoded (openssl rand -base64 32)`);
  });
  if (encryption.keysFromEnv !== undefined) {
    const text = env[encryption.keysFromEnv];
    if (text === undefined || text.trim() === '') {
      add('encryption.keysFromEnv', 'envSet', `names ${encryption.keysFromEnv}, which is not set or empty`);
    } else {
      const parsed = parseKeyList(text);
      for (const problem of parsed.problems) add('encryption.keysFromEnv', 'keyList', `(${encryption.keysFromEnv}): ${problem}`);
      keys.push(...parsed.keys);
    }
  }
  const seen = new Set<string>();
  for (const { id } of keys) {
    if (seen.has(id)) add('encryption.keys', 'uniqueIds', `holds key id "${id}" twice`);
    seen.add(id);
  }
  return { keys, problems };
}

/** Cross-field rules of the two sections; with `options` keys, the keys themselves. */
export function payloadCodecViolations(encryption: EncryptionOptions): ConfigViolation[] {
  if (!encryption.enabled || encryption.keyProvider === 'external') return [];
  const { keys, problems } = keysFromOptions(encryption);
  if (problems.length === 0 && keys.length === 0) {
    problems.push({
      path: 'encryption.keys',
      rule: 'needsKey',
      message: "encryption.keys needs at least one key when encryption.enabled (or set keysFromEnv, or keyProvider 'external')",
    });
  }
  return problems;
}
