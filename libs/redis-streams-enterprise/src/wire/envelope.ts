import secureJsonParse from 'secure-json-parse';
import { gunzipSync, gzipSync } from 'node:zlib';
import { MessageDecodeError } from '../errors/message-decode.error.js';
import { constants as bufferConstants } from 'node:buffer';
import { InvalidMessageError } from '../errors/invalid-message.error.js';
import { PayloadTooLargeError } from '../errors/payload-too-large.error.js';

/*
 * Wire format (version 1). A message is one stream entry whose fields are:
 *   v        "1"                      optional; any other value is refused (dead-lettered)
 *   pattern  the Nest pattern          optional; defaults to the pattern of the stream it was read from
 *   id       message id                optional; defaults to the entry id
 *   data     JSON of the payload       required, unless `blob` is set
 *   blob     claim-check blob id       instead of `data`: the payload's JSON is the string key <stream>:blob:<id>
 *   size     payload bytes             with `blob`: the byte length of the stored JSON
 *   headers  JSON object of strings    optional
 *   replyTo  reply stream key          set by send(); absent for events
 *   enc      codec chain               optional: `data` (or the blob) is base64 of the JSON after these codecs, applied
 *                                      left to right and undone right to left: a compression (`gzip`, `lz4`, `snappy`),
 *                                      then `aes256gcm` (end-to-end encryption), e.g. "lz4+aes256gcm"; "gzip" alone is
 *                                      also what replay copies with replay.compression carry. An unknown codec, or one
 *                                      whose package the consumer lacks, dead-letters the entry (codec-unavailable)
 *   kid      key id                    with aes256gcm: the key of the ring that encrypted `data` (and `eheaders`)
 *   eheaders encrypted headers         optional, with aes256gcm: base64 of the sealed JSON object of the headers named
 *                                      by encryption.encryptHeaders (merged into `headers` once decrypted)
 *                                      Sealed values are IV (12 bytes) | ciphertext | GCM tag (16 bytes); the
 *                                      authenticated data binds them to the pattern, `id`, `kid` and `enc`
 *                                      (see payload-codec/aes-gcm.ts), so a moved or relabelled entry fails
 *                                      (decrypt-failed). Replies seal `response` or `err` the same way (enc, kid).
 *   schema   "<event type>@<version>"  optional: the registered schema version the payload was written with;
 *                                      unstamped, a consumer with schema.enabled validates it against the latest
 *                                      version of the pattern's event type (strict, warn; types without schema: not)
 *   key      partition / ordering key  optional: messages with one key are handled in order (partition ordering)
 *   idem     idempotency key           optional: publish and processing deduplicate on it (exactly-once)
 *   seq      sequence number           set by publish under global ordering: 1, 2, 3... per topic
 *   epoch    partition layout epoch    set on partitioned topics whose partition count changed (0 when absent)
 *   deps     JSON array of keys        optional: idempotency keys or message ids this message depends on (causal)
 * Control entries (`rse.control` field) are written by the library itself (partition layout changes) and never
 * reach handlers.
 * Copies made by a StreamMirror (replication/, cross-region) keep every field and add two, ignored by consumers:
 *   rse.origin     region the entry was born in   a mirror copies only entries without it or from its own source
 *                                                 region, so nothing loops between regions
 *   rse.origin.id  its entry id in that region    copies get new ids (XADD *) in the region they are copied into
 * A producer in any language can `XADD rse:{orders.created} * data '{"orderId":1}'` and a Nest handler of
 * 'orders.created' receives `{ orderId: 1 }`.
 *
 * A reply is an entry of the requester's reply stream with fields:
 *   id (request id), response (JSON, optional), err (JSON {name, code, message}, optional), done ("1" on the last)
 */

export const WIRE_VERSION = '1';
const MAX_HEADERS = 64;
const HEADER_NAME = /^[A-Za-z0-9._-]{1,128}$/;
const MAX_HEADER_VALUE = 4_096;

/** Headers travel as a string map; names are restricted so they are safe to log and forward. */
export type MessageHeaders = Readonly<Record<string, string>>;

/** A decoded message. */
export interface DecodedMessage {
  readonly pattern: string;
  readonly messageId: string;
  readonly data: unknown;
  readonly headers: MessageHeaders;
  readonly replyTo?: string;
  /** `<event type>@<version>` of the schema the producer validated against. */
  readonly schema?: string;
  readonly key?: string;
  readonly idempotencyKey?: string;
  readonly sequence?: number;
  readonly dependsOn?: readonly string[];
}

/** A payload stored beside the stream (claim-check), referenced from the entry. */
export interface BlobReference {
  /** Blob id (the key is `StreamKeys.blobOf(stream, id)`). */
  readonly id: string;
  /** Byte length of the stored JSON. */
  readonly bytes: number;
}

/** The codec fields of an encoded payload (compression, encryption): see `enc`, `kid`, `eheaders` above. */
export interface PayloadEncoding {
  readonly enc: string;
  readonly kid?: string;
  readonly sealedHeaders?: string;
}

/** What a producer writes. */
export interface OutgoingMessage {
  readonly pattern: string;
  readonly messageId: string;
  /** Payload already serialized to JSON (size checks happen on this string); ignored when `blob` is set. */
  readonly json: string;
  /** Claim-check: the payload was stored apart; the entry carries this reference instead of `data`. */
  readonly blob?: BlobReference;
  readonly headers?: MessageHeaders;
  readonly replyTo?: string;
  readonly schema?: string;
  readonly key?: string;
  readonly idempotencyKey?: string;
  readonly epoch?: number;
  readonly dependsOn?: readonly string[];
  /** Set when `json` (or the blob) holds the payload after codecs (base64): written as `enc`, `kid`, `eheaders`. */
  readonly encoding?: PayloadEncoding;
}

/** A reply as it travels back to the requester. */
export interface ReplyMessage {
  readonly requestId: string;
  readonly response?: unknown;
  readonly err?: WireError;
  readonly done: boolean;
}

/** An error as sent to a client: never a stack. */
export interface WireError {
  readonly name: string;
  readonly message: string;
  readonly code?: string;
  readonly status?: string | number;
}

const NO_HEADERS: MessageHeaders = Object.freeze(Object.create(null));

/**
 * True when `text` encodes to more than `maxBytes` UTF-8 bytes. A UTF-16 code unit takes at most 3 bytes, so the
 * O(n) byte count is only needed for strings between maxBytes/3 and maxBytes characters.
 */
export function exceedsBytes(text: string, maxBytes: number): boolean {
  if (text.length > maxBytes) return true;
  if (text.length * 3 <= maxBytes) return false;
  return Buffer.byteLength(text) > maxBytes;
}

/** Parses JSON from the network: `__proto__` and `constructor.prototype` keys are removed, never applied. */
export function parseJsonSafely(text: string): unknown {
  return secureJsonParse.parse(text, undefined, { protoAction: 'remove', constructorAction: 'remove' });
}

/** Serializes a payload; `undefined` becomes `null` so the entry always has valid JSON. */
export function serializePayload(data: unknown): string {
  return JSON.stringify(data === undefined ? null : data);
}

/** Field/value list for XADD. */
export function encodeMessage(message: OutgoingMessage): string[] {
  const fields = message.blob
    ? ['v', WIRE_VERSION, 'pattern', message.pattern, 'id', message.messageId, 'blob', message.blob.id, 'size', String(message.blob.bytes)]
    : ['v', WIRE_VERSION, 'pattern', message.pattern, 'id', message.messageId, 'data', message.json];
  if (message.encoding) {
    fields.push('enc', message.encoding.enc);
    if (message.encoding.kid !== undefined) fields.push('kid', message.encoding.kid);
    if (message.encoding.sealedHeaders !== undefined) fields.push('eheaders', message.encoding.sealedHeaders);
  }
  if (message.headers && Object.keys(message.headers).length > 0) {
    fields.push('headers', JSON.stringify(validateHeaders(message.headers)));
  }
  if (message.replyTo) fields.push('replyTo', message.replyTo);
  if (message.schema) fields.push('schema', message.schema);
  if (message.key !== undefined) fields.push('key', message.key);
  if (message.idempotencyKey !== undefined) fields.push('idem', message.idempotencyKey);
  if (message.epoch) fields.push('epoch', String(message.epoch));
  if (message.dependsOn && message.dependsOn.length > 0) fields.push('deps', JSON.stringify(message.dependsOn));
  return fields;
}

/**
 * Decodes an entry read from a stream. A claim-checked entry (`blob`) must have its payload fetched first and put in
 * `data` (see claim-check.ts).
 * @throws MessageDecodeError with the reason, for the dead-letter record.
 */
export function decodeMessage(
  entryId: string,
  fields: Record<string, string>,
  streamPattern: string,
  maxPayloadBytes: number,
): DecodedMessage {
  const version = fields.v ?? WIRE_VERSION;
  if (version !== WIRE_VERSION) {
    throw new MessageDecodeError(`unknown wire version "${version.slice(0, 20)}" (this consumer reads ${WIRE_VERSION})`);
  }
  let raw = fields.data;
  if (raw === undefined) {
    throw new MessageDecodeError(
      fields.blob === undefined ? 'the entry has no "data" field' : `the claim-checked payload (blob "${fields.blob.slice(0, 64)}") was not fetched`,
    );
  }
  if (fields.enc !== undefined) raw = decompress(raw, fields.enc, maxPayloadBytes);
  if (exceedsBytes(raw, maxPayloadBytes)) {
    throw new MessageDecodeError(`payload is larger than streams.maxPayloadBytes (${maxPayloadBytes})`);
  }
  let data: unknown;
  try {
    data = parseJsonSafely(raw);
  } catch (error) {
    throw new MessageDecodeError(`"data" is not valid JSON: ${(error as Error).message}`, { cause: error });
  }
  let headers = NO_HEADERS;
  if (fields.headers !== undefined) {
    try {
      headers = Object.freeze(validateHeaders(parseJsonSafely(fields.headers)));
    } catch (error) {
      throw new MessageDecodeError(`"headers" is invalid: ${(error as Error).message}`, { cause: error });
    }
  }
  return {
    pattern: fields.pattern ?? streamPattern,
    messageId: fields.id ?? entryId,
    data,
    headers,
    replyTo: fields.replyTo,
    schema: fields.schema,
    key: fields.key,
    idempotencyKey: fields.idem,
    sequence: fields.seq === undefined ? undefined : Number(fields.seq),
    dependsOn: fields.deps === undefined ? undefined : decodeDependencies(fields.deps),
  };
}

/** The `deps` field: a JSON array of non-empty strings (at most 100). */
export function decodeDependencies(text: string): string[] {
  let value: unknown;
  try {
    value = parseJsonSafely(text);
  } catch (error) {
    throw new MessageDecodeError(`"deps" is not valid JSON: ${(error as Error).message}`, { cause: error });
  }
  if (!Array.isArray(value) || value.length > MAX_DEPENDENCIES || !value.every((d) => typeof d === 'string' && d.length > 0 && d.length <= 512)) {
    throw new MessageDecodeError('"deps" must be a JSON array of at most 100 non-empty strings');
  }
  return value as string[];
}

/** Most dependencies one message may name (causal ordering); a consumer refuses more. */
export const MAX_DEPENDENCIES = 100;

/** Checks the dependencies a producer gives a message (each a message key, at most MAX_DEPENDENCIES). */
export function validateDependencies(keys: readonly string[]): string[] {
  if (keys.length > MAX_DEPENDENCIES) throw new InvalidMessageError('dependsOn', `a message may depend on at most ${MAX_DEPENDENCIES} messages (got ${keys.length})`);
  return keys.map((key) => validateMessageKey('dependsOn', key));
}

/**
 * The payload's JSON, or PayloadTooLargeError when it cannot be sent. A string payload longer than the limit is
 * refused before serialising (its JSON is longer still). JSON.stringify throws a RangeError once its result would
 * exceed the longest string V8 can hold (2^29 - 24 characters): that is a payload too large to send, not a bug of the
 * caller's, and must not leak as `RangeError: Invalid string length`. Other RangeErrors (a structure nested too
 * deeply: "Maximum call stack size exceeded") pass through.
 */
export function serializePayloadWithin(pattern: string, data: unknown, maxPayloadBytes: number): string {
  if (typeof data === 'string' && data.length > maxPayloadBytes) {
    throw new PayloadTooLargeError(pattern, data.length + 2, maxPayloadBytes, { isLowerBound: true });
  }
  try {
    return serializePayload(data);
  } catch (error) {
    if (error instanceof RangeError && /Invalid string length/i.test(error.message)) {
      throw new PayloadTooLargeError(pattern, bufferConstants.MAX_STRING_LENGTH + 1, maxPayloadBytes, { isLowerBound: true, cause: error });
    }
    throw error;
  }
}

/** Checks an idempotency key, partition key or dependency given by a producer. */
export function validateMessageKey(kind: string, key: string): string {
  if (typeof key !== 'string' || key.length === 0 || key.length > 512) {
    throw new InvalidMessageError(kind, `${kind} must be a non-empty string of at most 512 characters`);
  }
  return key;
}

/** Compresses a JSON payload for the `data` field; the entry must also carry `enc: gzip`. */
export function compressPayload(json: string): string {
  return gzipSync(json).toString('base64');
}

function decompress(data: string, encoding: string, maxPayloadBytes: number): string {
  if (encoding !== 'gzip') throw new MessageDecodeError(`unknown encoding "${encoding.slice(0, 20)}"`);
  try {
    // maxOutputLength: a small compressed field cannot expand into gigabytes (a zip bomb).
    return gunzipSync(Buffer.from(data, 'base64'), { maxOutputLength: maxPayloadBytes }).toString('utf8');
  } catch (error) {
    throw new MessageDecodeError(`"data" could not be decompressed within streams.maxPayloadBytes: ${(error as Error).message}`, { cause: error });
  }
}

/** Checks a header map and copies it into a prototype-less object. */
export function validateHeaders(input: unknown): Record<string, string> {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) throw new InvalidMessageError('headers', 'headers must be an object');
  const entries = Object.entries(input);
  if (entries.length > MAX_HEADERS) throw new InvalidMessageError('headers', `at most ${MAX_HEADERS} headers are allowed`);
  const out: Record<string, string> = Object.create(null);
  for (const [name, value] of entries) {
    if (!HEADER_NAME.test(name)) throw new InvalidMessageError('headers', `header name ${JSON.stringify(name.slice(0, 40))} must match ${HEADER_NAME}`);
    if (typeof value !== 'string') throw new InvalidMessageError('headers', `header "${name}" must be a string`);
    if (value.length > MAX_HEADER_VALUE) throw new InvalidMessageError('headers', `header "${name}" is longer than ${MAX_HEADER_VALUE} characters`);
    out[name] = value;
  }
  return out;
}

export function encodeReply(reply: ReplyMessage): string[] {
  const fields = ['id', reply.requestId, 'done', reply.done ? '1' : '0'];
  if (reply.err) fields.push('err', JSON.stringify(reply.err));
  else if (reply.response !== undefined) fields.push('response', JSON.stringify(reply.response));
  return fields;
}

/** Decodes a reply entry; returns null for entries that are not replies. */
export function decodeReply(fields: Record<string, string>): ReplyMessage | null {
  const requestId = fields.id;
  if (!requestId) return null;
  const done = fields.done === '1';
  if (fields.err !== undefined) {
    const parsed = parseJsonSafely(fields.err) as Partial<WireError> | null;
    return {
      requestId,
      done: true,
      err: {
        name: String(parsed?.name ?? 'Error'),
        message: String(parsed?.message ?? 'Remote handler failed'),
        code: parsed?.code === undefined ? undefined : String(parsed.code),
        status: parsed?.status,
      },
    };
  }
  const response = fields.response === undefined ? undefined : parseJsonSafely(fields.response);
  return { requestId, done, response };
}

/** Converts anything thrown by a handler into what a client may see. */
export function toWireError(error: unknown): WireError {
  if (error instanceof Error) {
    const withCode = error as Error & { code?: unknown; status?: unknown; getError?: () => unknown };
    const rpcPayload = typeof withCode.getError === 'function' ? withCode.getError() : undefined;
    if (rpcPayload && typeof rpcPayload === 'object') {
      const p = rpcPayload as { message?: unknown; status?: unknown; code?: unknown; name?: unknown };
      return {
        name: String(p.name ?? error.name),
        message: String(p.message ?? error.message),
        code: p.code === undefined ? undefined : String(p.code),
        status: typeof p.status === 'number' || typeof p.status === 'string' ? p.status : undefined,
      };
    }
    return {
      name: error.name,
      message: error.message,
      code: typeof withCode.code === 'string' ? withCode.code : undefined,
      status: typeof withCode.status === 'number' || typeof withCode.status === 'string' ? withCode.status : undefined,
    };
  }
  if (typeof error === 'object' && error !== null) {
    const o = error as { message?: unknown; status?: unknown; name?: unknown; code?: unknown };
    return {
      name: typeof o.name === 'string' ? o.name : 'Error',
      message: typeof o.message === 'string' ? o.message : JSON.stringify(error).slice(0, 500),
      code: typeof o.code === 'string' ? o.code : undefined,
      status: typeof o.status === 'number' || typeof o.status === 'string' ? o.status : undefined,
    };
  }
  return { name: 'Error', message: String(error) };
}
