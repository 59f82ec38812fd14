import { Logger } from '@nestjs/common';
import type { KeyObject } from 'node:crypto';
import { KEY_ID } from '../config/payload-codec.options.js';
import type { ResolvedRedisStreamsConfig } from '../config/redis-streams.options.js';
import { StreamKeys } from '../connection/stream-keys.js';
import { CodecUnavailableError } from '../errors/codec-unavailable.error.js';
import { DecryptFailedError } from '../errors/decrypt-failed.error.js';
import { InvalidOptionsError } from '../errors/invalid-options.error.js';
import { MessageDecodeError } from '../errors/message-decode.error.js';
import { errorText } from '../observability/log-format.js';
import { parseJsonSafely, validateHeaders, type MessageHeaders, type PayloadEncoding } from '../wire/envelope.js';
import { AES_256_GCM, bindingOf, open, RandomIvs, seal } from './aes-gcm.js';
import { Compressors, isCompressionCodec, type CompressionCodec } from './compressors.js';
import { EncryptionKeyProvider, KeyRing, OptionsKeyProvider } from './key-ring.js';

/** Longest codec chain a message may name (one compression and the encryption, with room to spare). */
const MAX_CODECS = 3;
const ENCODING_FIELDS = ['enc', 'kid', 'eheaders'] as const;

/** A payload ready for the entry: `json` is the JSON itself, or base64 of it after `encoding`. */
export interface EncodedPayload {
  readonly json: string;
  readonly encoding?: PayloadEncoding;
  /** The headers to write in the clear (those named by encryption.encryptHeaders travel in `eheaders`). */
  readonly headers?: MessageHeaders;
}

/**
 * End-to-end encryption (AES-256-GCM, node:crypto) and compression (gzip, LZ4, Snappy) of payloads, between the
 * producer's JSON and the entry's `data` field (see wire/envelope.ts: `enc`, `kid`, `eheaders`). The producer
 * compresses above compression.thresholdBytes, then encrypts with the newest key of the ring; the consumer undoes
 * whatever chain each message names, so producers with different settings can share a stream. Redis, dead letters,
 * replay copies and claim-check blobs only ever hold what the producer wrote; replies are sealed the same way.
 * Failures are MessageDecodeErrors the consumer dead-letters: DecryptFailedError, CodecUnavailableError.
 */
export class PayloadCodec {
  private readonly logger = new Logger('RedisStreamsPayloadCodec');
  private readonly keys: StreamKeys;
  private ring?: KeyRing;
  private loading?: Promise<KeyRing>;
  private loadedAtMs = 0;
  private readonly ivs = new RandomIvs();

  constructor(
    private readonly config: ResolvedRedisStreamsConfig,
    /** The application's key provider (used with encryption.keyProvider 'external'). */
    private readonly provider?: EncryptionKeyProvider,
    private readonly compressors = new Compressors(),
    private readonly now: () => number = Date.now,
  ) {
    this.keys = new StreamKeys(config.streams.keyPrefix);
  }

  /** True when what this app writes is transformed (encrypted or compressed). */
  get isEncoding(): boolean {
    return this.config.encryption.enabled || this.config.compression.codec !== 'none';
  }

  /**
   * Loads the key ring and the compression codec's package, so a missing key, provider or package fails the start.
   * @throws InvalidOptionsError, OptionalDependencyMissingError
   */
  async start(): Promise<void> {
    if (this.config.compression.codec !== 'none') this.compressors.check(this.config.compression.codec);
    if (this.config.encryption.enabled) await this.keyRing();
  }

  /** Encodes a payload's JSON for `data` (or its claim-check blob): compress above the threshold, then encrypt. */
  async encode(json: string, pattern: string, messageId: string, headers?: MessageHeaders): Promise<EncodedPayload> {
    if (!this.isEncoding) return { json, headers };
    const { codec, thresholdBytes } = this.config.compression;
    let bytes: Buffer = Buffer.from(json, 'utf8');
    const chain: string[] = [];
    if (codec !== 'none' && bytes.length >= thresholdBytes) {
      bytes = this.compressors.compress(codec, bytes);
      chain.push(codec);
    }
    if (!this.config.encryption.enabled) {
      return chain.length === 0 ? { json, headers } : { json: bytes.toString('base64'), encoding: { enc: chain.join('+') }, headers };
    }
    const ring = await this.refreshedRing();
    const kid = ring.currentId;
    chain.push(AES_256_GCM);
    const enc = chain.join('+');
    const sealed = seal(ring.current, bytes, bindingOf('message', pattern, messageId, kid, enc), this.ivs).toString('base64');
    const { plain, secret } = this.splitHeaders(headers);
    const sealedHeaders = secret && seal(ring.current, Buffer.from(JSON.stringify(secret)), bindingOf('headers', pattern, messageId, kid, enc), this.ivs).toString('base64');
    return { json: sealed, encoding: { enc, kid, sealedHeaders }, headers: plain };
  }

  /**
   * Undoes the codec chain of an entry read from `streamPattern`'s stream: returns its fields with the payload's JSON
   * in `data` (and decrypted headers merged into `headers`), ready for decodeMessage.
   * @throws DecryptFailedError, CodecUnavailableError, MessageDecodeError
   */
  async decode(fields: Record<string, string>, streamPattern: string, entryId: string): Promise<Record<string, string>> {
    const { enc, eheaders } = fields;
    const { enabled, acceptPlaintext } = this.config.encryption;
    if (enc === undefined && eheaders === undefined) {
      if (enabled && !acceptPlaintext) throw new DecryptFailedError('the message is not encrypted and encryption.acceptPlaintext is false');
      return fields;
    }
    const chain = parseChain(enc ?? '');
    const encrypted = chain.includes(AES_256_GCM);
    if (!encrypted && enabled && !acceptPlaintext) throw new DecryptFailedError('the message is not encrypted and encryption.acceptPlaintext is false');
    if (eheaders !== undefined && !encrypted) throw new DecryptFailedError('"eheaders" needs aes256gcm in "enc"');
    if (fields.data === undefined) throw new MessageDecodeError('the encoded entry has no "data" field');
    const maxBytes = this.config.streams.maxPayloadBytes;
    if (fields.data.length > encodedLimit(maxBytes)) throw new MessageDecodeError(`payload is larger than streams.maxPayloadBytes (${maxBytes})`);
    let bytes: Buffer = Buffer.from(fields.data, 'base64');
    const out = withoutEncoding(fields);
    let sealing: { key: KeyObject; kid: string; pattern: string; messageId: string } | undefined;
    if (encrypted) {
      const { key, kid } = await this.keyOf(fields.kid);
      sealing = { key, kid, pattern: this.boundPattern(fields, streamPattern), messageId: fields.id ?? entryId };
    }
    for (const codec of [...chain].reverse()) {
      bytes = codec === AES_256_GCM && sealing
        ? open(sealing.key, bytes, bindingOf('message', sealing.pattern, sealing.messageId, sealing.kid, enc as string))
        : this.compressors.decompress(codec as CompressionCodec, bytes, maxBytes);
    }
    out.data = bytes.toString('utf8');
    if (eheaders !== undefined && sealing) {
      const opened = open(sealing.key, Buffer.from(eheaders, 'base64'), bindingOf('headers', sealing.pattern, sealing.messageId, sealing.kid, enc as string));
      out.headers = JSON.stringify(mergeHeaders(fields.headers, opened));
    }
    return out;
  }

  /** Seals a reply's `response` or `err` (encryption on), bound to the reply stream and the request id. */
  async encodeReply(fields: string[], replyTo: string): Promise<string[]> {
    if (!this.config.encryption.enabled) return fields;
    const at = fields.findIndex((f, i) => i % 2 === 0 && (f === 'response' || f === 'err'));
    if (at < 0) return fields;
    const ring = await this.refreshedRing();
    const kid = ring.currentId;
    const out = [...fields];
    out[at + 1] = seal(ring.current, Buffer.from(fields[at + 1], 'utf8'), bindingOf('reply', replyTo, fields[1], kid, AES_256_GCM), this.ivs).toString('base64');
    out.push('enc', AES_256_GCM, 'kid', kid);
    return out;
  }

  /**
   * Opens a reply read from `replyStream`.
   * @throws DecryptFailedError
   */
  async decodeReply(fields: Record<string, string>, replyStream: string): Promise<Record<string, string>> {
    const { enabled, acceptPlaintext } = this.config.encryption;
    if (fields.enc === undefined) {
      const hasPayload = fields.response !== undefined || fields.err !== undefined;
      if (hasPayload && enabled && !acceptPlaintext) throw new DecryptFailedError('the reply is not encrypted and encryption.acceptPlaintext is false');
      return fields;
    }
    if (fields.enc !== AES_256_GCM) throw new DecryptFailedError(`unknown reply encoding "${fields.enc.slice(0, 32)}"`);
    const name = fields.response !== undefined ? 'response' : 'err';
    if (fields[name] === undefined || fields.id === undefined) throw new DecryptFailedError('the encrypted reply has no id or payload');
    const { key, kid } = await this.keyOf(fields.kid);
    const opened = open(key, Buffer.from(fields[name], 'base64'), bindingOf('reply', replyStream, fields.id, kid, AES_256_GCM));
    const out = withoutEncoding(fields);
    out[name] = opened.toString('utf8');
    return out;
  }

  /** The key a message names; an unknown id re-reads the keys first when a refresh is due (a rotation elsewhere). */
  private async keyOf(kid: string | undefined): Promise<{ key: KeyObject; kid: string }> {
    if (!this.config.encryption.enabled) {
      throw new DecryptFailedError('the message is encrypted, but encryption is not enabled on this consumer (encryption.enabled)');
    }
    if (kid === undefined || !KEY_ID.test(kid)) throw new DecryptFailedError('the encrypted message has no valid "kid" field');
    const key = (await this.keyRing()).get(kid) ?? (await this.refreshedRing()).get(kid);
    if (!key) throw new DecryptFailedError(`no key with id "${kid}" in the key ring (keep retired keys in the ring until their messages are consumed)`);
    return { key, kid };
  }

  /**
   * The pattern the ciphertext must be bound to: the pattern of the stream it was read from. A message naming another
   * pattern is accepted only as a replay copy of an entry of that pattern's stream (`rse.replay.from`); anything else
   * was moved between streams.
   */
  private boundPattern(fields: Record<string, string>, streamPattern: string): string {
    const pattern = fields.pattern ?? streamPattern;
    if (pattern === streamPattern) return pattern;
    const from = fields['rse.replay.from'];
    if (from !== undefined && this.isStreamOf(pattern, from.slice(0, Math.max(0, from.lastIndexOf('/'))))) return pattern;
    throw new DecryptFailedError(
      `the message was encrypted for pattern ${JSON.stringify(pattern.slice(0, 100))}, not for the stream it was read from (moved between streams?)`,
    );
  }

  private isStreamOf(pattern: string, stream: string): boolean {
    if (stream === this.keys.stream(pattern)) return true;
    const partitionPrefix = this.keys.partition(pattern, 0).slice(0, -'0}'.length);
    return stream.startsWith(partitionPrefix) && /^\d{1,6}\}$/.test(stream.slice(partitionPrefix.length));
  }

  private splitHeaders(headers: MessageHeaders | undefined): { plain?: MessageHeaders; secret?: Record<string, string> } {
    const names = this.config.encryption.encryptHeaders;
    if (!headers || names.length === 0 || !names.some((n) => Object.hasOwn(headers, n))) return { plain: headers };
    const plain: Record<string, string> = Object.create(null);
    const secret: Record<string, string> = Object.create(null);
    for (const [name, value] of Object.entries(headers)) (names.includes(name) ? secret : plain)[name] = value;
    return { plain, secret };
  }

  private async keyRing(): Promise<KeyRing> {
    if (this.ring) return this.ring;
    this.loading ??= this.loadRing().finally(() => (this.loading = undefined));
    return this.loading;
  }

  /** The ring, read again first when encryption.keyRefreshIntervalMs has passed; a failed refresh keeps the old ring. */
  private async refreshedRing(): Promise<KeyRing> {
    const interval = this.config.encryption.keyRefreshIntervalMs;
    if (!this.ring || interval === 0 || this.now() - this.loadedAtMs < interval) return this.keyRing();
    this.loadedAtMs = this.now(); // one attempt per interval, also when it fails
    const current = this.ring;
    this.loading ??= this.loadRing()
      .catch((error: unknown) => {
        this.logger.warn(`Reading the encryption keys again failed, the current ring stays in use: ${errorText(error)}`);
        return current;
      })
      .finally(() => (this.loading = undefined));
    return this.loading;
  }

  private async loadRing(): Promise<KeyRing> {
    const ring = new KeyRing(await this.source().getKeys());
    if (this.ring && ring.currentId !== this.ring.currentId) this.logger.log(`Encryption key ring reloaded: new messages use key id=${ring.currentId}`);
    this.ring = ring;
    this.loadedAtMs = this.now();
    return ring;
  }

  private source(): EncryptionKeyProvider {
    if (this.config.encryption.keyProvider === 'options') return new OptionsKeyProvider(this.config.encryption);
    if (this.provider) return this.provider;
    throw new InvalidOptionsError([
      {
        path: 'encryption.keyProvider',
        rule: 'providerMissing',
        message:
          "encryption.keyProvider is 'external' but no EncryptionKeyProvider was provided: provide it to the module (forRootAsync({ imports }) " +
          'of a module exporting it) or pass it to the RedisStreamsServer / RedisStreamsClient constructor',
      },
    ]);
  }
}

/** Longest `data` an encoded payload of at most maxBytes may have: base64 of it, with the GCM overhead. */
function encodedLimit(maxBytes: number): number {
  return Math.ceil((maxBytes + 64) / 3) * 4;
}

function parseChain(enc: string): string[] {
  const chain = enc.split('+');
  const known = chain.every((c) => c === AES_256_GCM || isCompressionCodec(c));
  if (!known || chain.length > MAX_CODECS) {
    const name = chain.find((c) => c !== AES_256_GCM && !isCompressionCodec(c)) ?? enc;
    throw new CodecUnavailableError(
      name.slice(0, 32),
      `unknown codec ${JSON.stringify(name.slice(0, 32))} in "enc" (this consumer reads gzip, lz4, snappy and aes256gcm, at most ${MAX_CODECS} chained)`,
    );
  }
  if (chain.indexOf(AES_256_GCM) >= 0 && chain.indexOf(AES_256_GCM) !== chain.length - 1) {
    throw new DecryptFailedError('aes256gcm must be the last codec of "enc" (compression comes before encryption)');
  }
  return chain;
}

/** The fields without `enc`, `kid` and `eheaders` (copied, not deleted: `delete` slows every later access). */
function withoutEncoding(fields: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name in fields) if (!(ENCODING_FIELDS as readonly string[]).includes(name)) out[name] = fields[name];
  return out;
}

function mergeHeaders(plainJson: string | undefined, sealed: Buffer): Record<string, string> {
  try {
    const plain = plainJson === undefined ? {} : validateHeaders(parseJsonSafely(plainJson));
    return validateHeaders({ ...plain, ...validateHeaders(parseJsonSafely(sealed.toString('utf8'))) });
  } catch (error) {
    throw new MessageDecodeError(`"headers" is invalid: ${(error as Error).message}`, { cause: error });
  }
}
