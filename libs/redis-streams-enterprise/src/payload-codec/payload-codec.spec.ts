import { createSecretKey, randomBytes } from 'node:crypto';
import { validateOptions } from '../config/validate-options.js';
import type { RedisStreamsEnterpriseConfig } from '../config/redis-streams.options.js';
import { CodecUnavailableError } from '../errors/codec-unavailable.error.js';
import { DecryptFailedError } from '../errors/decrypt-failed.error.js';
import { InvalidOptionsError } from '../errors/invalid-options.error.js';
import { MessageDecodeError } from '../errors/message-decode.error.js';
import { encodeMessage } from '../wire/envelope.js';
import { bindingOf, open, RandomIvs, seal } from './aes-gcm.js';
import { Compressors } from './compressors.js';
import { EncryptionKeyProvider, type EncryptionKey } from './key-ring.js';
import { PayloadCodec } from './payload-codec.js';

const keyA = randomBytes(32).toString('base64');
const keyB = randomBytes(32).toString('base64');

function codecWith(overrides: RedisStreamsEnterpriseConfig, provider?: EncryptionKeyProvider, compressors?: Compressors): PayloadCodec {
  return new PayloadCodec(validateOptions({ streams: { keyPrefix: 'u' }, ...overrides }), provider, compressors);
}

/** Encodes a message the way a producer does and returns its entry fields as a consumer reads them. */
async function entryOf(codec: PayloadCodec, data: unknown, pattern = 'orders', headers?: Record<string, string>): Promise<Record<string, string>> {
  const json = JSON.stringify(data);
  const encoded = await codec.encode(json, pattern, 'm-1', headers);
  const fields = encodeMessage({ pattern, messageId: 'm-1', json: encoded.json, encoding: encoded.encoding, headers: encoded.headers });
  const out: Record<string, string> = {};
  for (let i = 0; i < fields.length; i += 2) out[fields[i]] = fields[i + 1];
  return out;
}

const encryptedWith = (keys: { id: string; key: string }[], more: RedisStreamsEnterpriseConfig['encryption'] = {}) => ({ encryption: { enabled: true, keys, ...more } });

describe('AES-256-GCM sealing', () => {
  it('never repeats an IV: 100,000 messages under one key get 100,000 distinct IVs', () => {
    const key = createSecretKey(randomBytes(32));
    const aad = bindingOf('message', 'p', 'id', 'k', 'aes256gcm');
    const seen = new Set<string>();
    const plaintext = Buffer.from('{}');
    const ivs = new RandomIvs(); // refills from the CSPRNG 390 times on the way
    for (let i = 0; i < 100_000; i++) seen.add(seal(key, plaintext, aad, ivs).subarray(0, 12).toString('hex'));
    expect(seen.size).toBe(100_000);
  });

  it('refuses a flipped bit, a truncated ciphertext, another binding and another key', () => {
    const key = createSecretKey(randomBytes(32));
    const aad = bindingOf('message', 'orders', 'm-1', 'k1', 'aes256gcm');
    const sealed = seal(key, Buffer.from('{"card":"4111"}'), aad, new RandomIvs());
    expect(open(key, sealed, aad).toString()).toBe('{"card":"4111"}');
    const flipped = Buffer.from(sealed);
    flipped[14] ^= 1;
    expect(() => open(key, flipped, aad)).toThrow(DecryptFailedError);
    expect(() => open(key, sealed.subarray(0, 20), aad)).toThrow(/truncated/);
    expect(() => open(key, sealed.subarray(0, sealed.length - 1), aad)).toThrow(DecryptFailedError);
    expect(() => open(key, sealed, bindingOf('message', 'payments', 'm-1', 'k1', 'aes256gcm'))).toThrow(DecryptFailedError);
    expect(() => open(createSecretKey(randomBytes(32)), sealed, aad)).toThrow(DecryptFailedError);
  });
});

describe('PayloadCodec', () => {
  it('leaves payloads as they are when neither encryption nor compression is on', async () => {
    const fields = await entryOf(codecWith({}), { a: 1 });
    expect(fields.data).toBe('{"a":1}');
    expect(fields.enc).toBeUndefined();
  });

  it('encrypts with the newest key and decrypts with every key of the ring; an unknown key id is refused', async () => {
    const old = codecWith(encryptedWith([{ id: 'k1', key: keyA }]));
    const rotated = codecWith(encryptedWith([{ id: 'k1', key: keyA }, { id: 'k2', key: keyB }]));
    const fromOld = await entryOf(old, { n: 1 });
    const fromNew = await entryOf(rotated, { n: 2 });
    expect([fromOld.kid, fromNew.kid]).toEqual(['k1', 'k2']);
    expect((await rotated.decode(fromOld, 'orders', '1-0')).data).toBe('{"n":1}');
    expect((await rotated.decode(fromNew, 'orders', '1-0')).data).toBe('{"n":2}');
    await expect(old.decode(fromNew, 'orders', '1-0')).rejects.toThrow(/no key with id "k2"/);
  });

  it('binds the ciphertext to the stream it was written for: read from another pattern\'s stream it is refused', async () => {
    const codec = codecWith(encryptedWith([{ id: 'k1', key: keyA }]));
    const fields = await entryOf(codec, { n: 1 }, 'orders');
    await expect(codec.decode(fields, 'payments', '1-0')).rejects.toThrow(DecryptFailedError);
    await expect(codec.decode({ ...fields, pattern: 'payments' }, 'payments', '1-0')).rejects.toThrow(/authentication failed/);
    await expect(codec.decode({ ...fields, id: 'm-2' }, 'orders', '1-0')).rejects.toThrow(/authentication failed/);
    await expect(codec.decode({ ...fields, enc: 'gzip+aes256gcm' }, 'orders', '1-0')).rejects.toThrow(/authentication failed/);
  });

  it('encrypts the named headers apart and merges them back', async () => {
    const codec = codecWith(encryptedWith([{ id: 'k1', key: keyA }], { encryptHeaders: ['ssn'] }));
    const fields = await entryOf(codec, { n: 1 }, 'orders', { ssn: '123-45-6789', tenant: 'acme' });
    expect(JSON.stringify(fields)).not.toContain('123-45-6789');
    expect(JSON.parse(fields.headers)).toEqual({ tenant: 'acme' });
    const opened = await codec.decode(fields, 'orders', '1-0');
    expect(JSON.parse(opened.headers)).toEqual({ tenant: 'acme', ssn: '123-45-6789' });
  });

  it('refuses plaintext when acceptPlaintext is false, and ciphertext when encryption is off', async () => {
    const strict = codecWith(encryptedWith([{ id: 'k1', key: keyA }], { acceptPlaintext: false }));
    await expect(strict.decode({ data: '{}' }, 'orders', '1-0')).rejects.toThrow(/not encrypted/);
    const fields = await entryOf(strict, { n: 1 });
    await expect(codecWith({}).decode(fields, 'orders', '1-0')).rejects.toThrow(/encryption is not enabled/);
  });

  it.each(['gzip', 'lz4', 'snappy'] as const)('compresses with %s above the threshold only, and composes with encryption', async (codec) => {
    const big = { text: 'x'.repeat(5_000) };
    const plainCodec = codecWith({ compression: { codec, thresholdBytes: 1_000 } });
    const small = await entryOf(plainCodec, { text: 'short' });
    expect(small.enc).toBeUndefined();
    const compressed = await entryOf(plainCodec, big);
    expect(compressed.enc).toBe(codec);
    expect(compressed.data.length).toBeLessThan(1_000);
    expect((await codecWith({}).decode(compressed, 'orders', '1-0')).data).toBe(JSON.stringify(big));
    const both = codecWith({ compression: { codec, thresholdBytes: 1_000 }, ...encryptedWith([{ id: 'k1', key: keyA }]) });
    const sealed = await entryOf(both, big);
    expect(sealed.enc).toBe(`${codec}+aes256gcm`);
    expect((await both.decode(sealed, 'orders', '1-0')).data).toBe(JSON.stringify(big));
  });

  it('names a missing codec package or an unknown codec (codec-unavailable), and bounds decompression', async () => {
    const compressed = await entryOf(codecWith({ compression: { codec: 'lz4', thresholdBytes: 0 } }), { text: 'y'.repeat(2_000) });
    const missing = (id: string) => {
      throw Object.assign(new Error(`Cannot find module '${id}'`), { code: 'MODULE_NOT_FOUND' });
    };
    const lacking = codecWith({}, undefined, new Compressors(missing));
    await expect(lacking.decode(compressed, 'orders', '1-0')).rejects.toThrow(CodecUnavailableError);
    await expect(lacking.decode(compressed, 'orders', '1-0')).rejects.toThrow(/"lz4-napi" is not installed/);
    await expect(codecWith({}).decode({ ...compressed, enc: 'zstd' }, 'orders', '1-0')).rejects.toThrow(/unknown codec "zstd"/);
    const tiny = codecWith({ streams: { keyPrefix: 'u', maxPayloadBytes: 1_000 } });
    await expect(tiny.decode(compressed, 'orders', '1-0')).rejects.toThrow(MessageDecodeError);
    await expect(codecWith({ compression: { codec: 'snappy' } }, undefined, new Compressors(missing)).start()).rejects.toThrow(/snappy/);
  });

  it('validates keys at start without printing them, and asks for a provider in external mode', async () => {
    const short = Buffer.alloc(16, 7).toString('base64');
    let message = '';
    try {
      validateOptions(encryptedWith([{ id: 'k1', key: short }]));
    } catch (error) {
      expect(error).toBeInstanceOf(InvalidOptionsError);
      message = (error as Error).message;
    }
    expect(message).toContain('encryption.keys.0.key must be 32 bytes');
    expect(message).not.toContain(short);
    expect(() => validateOptions({ encryption: { enabled: true } })).toThrow(/encryption.keys needs at least one key/);
    process.env.RSE_SPEC_KEYS = `k1:${keyA},k2:${short}`;
    expect(() => validateOptions({ encryption: { enabled: true, keysFromEnv: 'RSE_SPEC_KEYS' } })).toThrow(/key "k2" must be 32 bytes/);
    process.env.RSE_SPEC_KEYS = `k1:${keyA}, k2:${keyB}`;
    const fromEnv = codecWith({ encryption: { enabled: true, keys: [{ id: 'k0', key: keyB }], keysFromEnv: 'RSE_SPEC_KEYS' } });
    expect((await entryOf(fromEnv, { n: 1 })).kid).toBe('k2'); // options keys first, then the variable's; the last encrypts
    delete process.env.RSE_SPEC_KEYS;
    const external = codecWith({ encryption: { enabled: true, keyProvider: 'external' } });
    await expect(external.start()).rejects.toThrow(/no EncryptionKeyProvider was provided/);
  });

  it('reads an external provider again after keyRefreshIntervalMs when a message names a new key', async () => {
    const ring: EncryptionKey[] = [{ id: 'k1', key: Buffer.from(keyA, 'base64') }];
    let calls = 0;
    const provider = new (class extends EncryptionKeyProvider {
      getKeys() {
        calls++;
        return [...ring];
      }
    })();
    let nowMs = 0;
    const config = validateOptions({ encryption: { enabled: true, keyProvider: 'external', keyRefreshIntervalMs: 60_000 } });
    const consumer = new PayloadCodec(config, provider, new Compressors(), () => nowMs);
    await consumer.start();
    const producer = codecWith(encryptedWith([{ id: 'k1', key: keyA }, { id: 'k2', key: keyB }]));
    const fields = await entryOf(producer, { n: 1 });
    ring.push({ id: 'k2', key: Buffer.from(keyB, 'base64') });
    await expect(consumer.decode(fields, 'orders', '1-0')).rejects.toThrow(/no key with id "k2"/); // not due yet
    nowMs = 60_000;
    expect((await consumer.decode(fields, 'orders', '1-0')).data).toBe('{"n":1}');
    expect(calls).toBe(2);
  });
});
