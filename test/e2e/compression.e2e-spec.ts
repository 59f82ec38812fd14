import { Controller, Inject, Injectable, type INestMicroservice } from '@nestjs/common';
import { Ctx, Payload } from '@nestjs/microservices';
import { createHash, randomBytes } from 'node:crypto';
import { lastValueFrom } from 'rxjs';
import {
  DeadLetterManager,
  RedisStreamsClient,
  RedisStreamsContext,
  StreamEvent,
  type RedisStreamsEnterpriseConfig,
} from 'nestjs-redis-streams-enterprise';
import { startConsumer, testConfig } from '../support/nest-apps.js';
import { cleanupPrefix, rawRedis, uniquePrefix, type RawRedis } from '../support/redis.js';
import { testKeys } from '../support/keys.js';
import { waitFor } from '../support/wait-for.js';

interface Doc {
  readonly id: string;
  readonly rows: readonly { readonly sku: string; readonly qty: number; readonly note: string }[];
}

@Injectable()
class Inbox {
  readonly received = new Map<string, { doc: Doc; entryId: string }>();
}

@Controller()
class DocsController {
  constructor(@Inject(Inbox) private readonly inbox: Inbox) {}

  @StreamEvent('docs.saved')
  saved(@Payload() doc: Doc, @Ctx() ctx: RedisStreamsContext) {
    this.inbox.received.set(doc.id, { doc, entryId: ctx.getEntryId() });
  }
}

/** A JSON document of about `bytes`, repetitive like real ones (so it compresses). */
function docOf(id: string, bytes: number): Doc {
  const rows = [];
  for (let i = 0; rows.length * 60 < bytes; i++) rows.push({ sku: `SKU-${i % 50}`, qty: i % 7, note: 'standard shipping' });
  return { id, rows };
}

const digest = (value: unknown) => createHash('sha256').update(JSON.stringify(value)).digest('hex');

describe('compression: LZ4, Snappy, gzip (real Redis)', () => {
  const prefix = uniquePrefix('compression');
  const keys = testKeys(prefix);
  // The consumer itself compresses nothing: it reads whatever codec each message names.
  const consumerConfig: RedisStreamsEnterpriseConfig = testConfig(prefix);
  const apps: INestMicroservice[] = [];
  const clients: RedisStreamsClient[] = [];
  let redis: RawRedis;
  let inbox: Inbox;
  let deadLetters: DeadLetterManager;

  const producer = (overrides: RedisStreamsEnterpriseConfig) => {
    const client = new RedisStreamsClient(testConfig(prefix, overrides));
    clients.push(client);
    return client;
  };
  const fieldsOf = async (entryId: string) => {
    const [entry] = await redis.xrange(keys.stream('docs.saved'), entryId, entryId);
    const list = entry?.[1] ?? [];
    return Object.fromEntries(list.flatMap((v, i) => (i % 2 === 0 ? [[v, list[i + 1]]] : []))) as Record<string, string>;
  };

  beforeAll(async () => {
    redis = rawRedis();
    const started = await startConsumer(consumerConfig, [DocsController], [Inbox]);
    apps.push(started.app);
    inbox = started.app.get(Inbox);
    deadLetters = new DeadLetterManager(consumerConfig);
  });

  afterAll(async () => {
    await deadLetters.close();
    for (const client of clients) await client.close();
    await Promise.all(apps.map((app) => app.close()));
    await cleanupPrefix(redis, prefix);
    redis.disconnect();
  });

  it.each(['lz4', 'snappy', 'gzip'] as const)('round-trips %s above the threshold, records the codec per message, and sends small payloads as they are', async (codec) => {
    const client = producer({ compression: { codec, thresholdBytes: 2_048 } });
    const big = docOf(`${codec}-big`, 50_000);
    const small = docOf(`${codec}-small`, 500);
    const bigId = await lastValueFrom(client.emit('docs.saved', big));
    const smallId = await lastValueFrom(client.emit('docs.saved', small));

    const bigFields = await fieldsOf(bigId);
    expect(bigFields.enc).toBe(codec);
    expect(bigFields.data.length).toBeLessThan(JSON.stringify(big).length / 4);
    const smallFields = await fieldsOf(smallId);
    expect(smallFields.enc).toBeUndefined();
    expect(smallFields.data).toBe(JSON.stringify(small));

    await waitFor(() => inbox.received.has(big.id) && inbox.received.has(small.id), { message: `the ${codec} messages` });
    expect(digest(inbox.received.get(big.id)?.doc)).toBe(digest(big));
    expect(inbox.received.get(small.id)?.doc).toEqual(small);
  });

  it('serves mixed producers (lz4, snappy, gzip, none) on one stream to one consumer', async () => {
    const codecs = ['lz4', 'snappy', 'gzip', 'none'] as const;
    const sent = await Promise.all(
      codecs.map(async (codec) => {
        const doc = docOf(`mixed-${codec}`, 20_000);
        const entryId = await lastValueFrom(producer({ compression: { codec, thresholdBytes: 1_024 } }).emit('docs.saved', doc));
        return { codec, doc, entryId };
      }),
    );
    await waitFor(() => sent.every((s) => inbox.received.has(s.doc.id)), { message: 'every producer\'s message' });
    for (const { codec, doc, entryId } of sent) {
      expect((await fieldsOf(entryId)).enc).toBe(codec === 'none' ? undefined : codec);
      expect(digest(inbox.received.get(doc.id)?.doc)).toBe(digest(doc));
    }
  });

  it('composes with encryption: compressed first, then encrypted (lz4+aes256gcm)', async () => {
    const encryption = { enabled: true, keys: [{ id: 'k1', key: randomBytes(32).toString('base64') }] };
    const encrypted = await startConsumer(testConfig(prefix, { encryption, consumer: { group: 'secure' } }), [DocsController], [Inbox]);
    apps.push(encrypted.app);
    const client = producer({ encryption, compression: { codec: 'lz4', thresholdBytes: 1_024 } });
    const doc = docOf('sealed', 50_000);
    const entryId = await lastValueFrom(client.emit('docs.saved', doc));
    const fields = await fieldsOf(entryId);
    expect(fields).toMatchObject({ enc: 'lz4+aes256gcm', kid: 'k1' });
    // Compressed before encryption: the ciphertext is as small as the compressed payload (ciphertext would not compress).
    expect(fields.data.length).toBeLessThan(JSON.stringify(doc).length / 4);
    expect(fields.data).not.toContain('SKU-');
    const secure = encrypted.app.get(Inbox);
    await waitFor(() => secure.received.has('sealed'), { message: 'the sealed message' });
    expect(digest(secure.received.get('sealed')?.doc)).toBe(digest(doc));
    // The consumer without the key cannot read it: dead-lettered, not guessed at.
    await waitFor(async () => (await deadLetters.list('docs.saved')).some((l) => l.originalId === entryId && l.reason === 'decrypt-failed'), {
      message: 'the keyless consumer\'s dead letter',
    });
  });

  it('dead-letters a message whose codec this consumer lacks (codec-unavailable, with the reason) and keeps consuming', async () => {
    const entryId = String(await redis.xadd(keys.stream('docs.saved'), '*', 'data', Buffer.from('{"id":"z"}').toString('base64'), 'enc', 'zstd'));
    await waitFor(async () => (await deadLetters.list('docs.saved')).some((l) => l.originalId === entryId), { message: 'the dead letter' });
    const letter = (await deadLetters.list('docs.saved')).find((l) => l.originalId === entryId);
    expect(letter).toMatchObject({ reason: 'codec-unavailable', errorName: 'CodecUnavailableError', errorCode: 'CODEC_UNAVAILABLE' });
    expect(letter?.errorMessage).toMatch(/unknown codec "zstd" in "enc"/);
    const next = docOf('after-zstd', 5_000);
    await lastValueFrom(producer({ compression: { codec: 'snappy', thresholdBytes: 0 } }).emit('docs.saved', next));
    await waitFor(() => inbox.received.has('after-zstd'), { message: 'the next message' });
  });
});
