import { Controller, Inject, Injectable, type INestMicroservice } from '@nestjs/common';
import { Ctx, Payload } from '@nestjs/microservices';
import { createHash } from 'node:crypto';
import { lastValueFrom } from 'rxjs';
import {
  DeadLetterManager,
  PayloadTooLargeError,
  RedisStreamsClient,
  RedisStreamsContext,
  RedisStreamsRecordBuilder,
  StreamEvent,
  type RedisStreamsEnterpriseConfig,
  type RedisStreamsServer,
} from 'nestjs-redis-streams-enterprise';
import { startConsumer, testConfig } from '../support/nest-apps.js';
import { cleanupPrefix, rawRedis, uniquePrefix, type RawRedis } from '../support/redis.js';
import { testKeys } from '../support/keys.js';
import { waitFor } from '../support/wait-for.js';

const MB = 1024 * 1024;

interface Document {
  readonly name: string;
  readonly body: string;
}

/** What one app's handlers received (one instance per app: nothing shared between apps). */
@Injectable()
class Inbox {
  readonly received = new Map<string, Document>();
  rejectNext = false;
}

@Controller()
class FilesController {
  constructor(@Inject(Inbox) private readonly inbox: Inbox) {}

  @StreamEvent('files.uploaded')
  uploaded(@Payload() doc: Document) {
    this.inbox.received.set(doc.name, doc);
  }

  @StreamEvent('files.reviewed')
  reviewed(@Payload() doc: Document, @Ctx() ctx: RedisStreamsContext) {
    if (this.inbox.rejectNext) {
      this.inbox.rejectNext = false;
      return ctx.deadLetter(`${doc.name} needs a second look`);
    }
    this.inbox.received.set(doc.name, doc);
  }
}

@Controller()
class ArchiveController {
  constructor(@Inject(Inbox) private readonly inbox: Inbox) {}

  @StreamEvent('files.archived')
  archived(@Payload() doc: Document) {
    this.inbox.received.set(doc.name, doc);
  }
}

/** About `bytes` of UTF-8 text, with 2-, 3- and 4-byte characters and JSON escapes, so a re-encoding would show. */
function textOf(bytes: number): string {
  const chunk = 'Large message, claim-checked: é € 😀 "quoted" \\ tab\t line\n 0123456789. ';
  return chunk.repeat(Math.floor(bytes / Buffer.byteLength(chunk)));
}

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

describe('large messages: claim-check (real Redis)', () => {
  const prefix = uniquePrefix('large');
  const keys = testKeys(prefix);
  // Above 64 KiB a payload goes to its own key; up to 80 MiB is accepted.
  const config: RedisStreamsEnterpriseConfig = testConfig(prefix, {
    streams: { maxPayloadBytes: 80 * MB, claimCheckThresholdBytes: 64 * 1024 },
    consumer: { batchSize: 1, concurrency: 2 },
  });
  const apps: INestMicroservice[] = [];
  let redis: RawRedis;
  let server: RedisStreamsServer;
  let client: RedisStreamsClient;
  let inbox: Inbox;
  let deadLetters: DeadLetterManager;

  const entryOf = async (pattern: string, entryId: string) => {
    const [entry] = await redis.xrange(keys.stream(pattern), entryId, entryId);
    const list = entry?.[1] ?? [];
    return Object.fromEntries(list.flatMap((v, i) => (i % 2 === 0 ? [[v, list[i + 1]]] : [])));
  };
  const blobKey = (pattern: string, blobId: string) => keys.blobOf(keys.stream(pattern), blobId);

  beforeAll(async () => {
    redis = rawRedis();
    const started = await startConsumer(config, [FilesController], [Inbox]);
    apps.push(started.app);
    ({ server, client } = started);
    inbox = started.app.get(Inbox);
    deadLetters = new DeadLetterManager(config);
  });

  afterAll(async () => {
    await deadLetters.close();
    await client.close();
    await Promise.all(apps.map((app) => app.close()));
    await cleanupPrefix(redis, prefix);
    redis.disconnect();
  });

  it('delivers a 64 MB payload through the claim-check, identical, with only a reference in the entry', async () => {
    const body = textOf(64 * MB);
    const sent: Document = { name: 'big.bin', body };
    const entryId = await lastValueFrom(client.emit('files.uploaded', sent));

    const fields = await entryOf('files.uploaded', entryId);
    expect(fields.data).toBeUndefined();
    expect(Number(fields.size)).toBe(Buffer.byteLength(JSON.stringify(sent)));
    expect(Number(fields.size)).toBeGreaterThan(64 * MB - 100);

    await waitFor(() => inbox.received.has('big.bin'), { timeoutMs: 20_000, message: 'the 64 MB message' });
    const got = inbox.received.get('big.bin');
    expect(got?.body.length).toBe(body.length);
    expect(sha256(got?.body ?? '')).toBe(sha256(body)); // never a 64 MB diff in the report
    expect(Object.keys(got ?? {})).toEqual(['name', 'body']);
    inbox.received.delete('big.bin');
    await waitFor(async () => Number((await redis.xpending(keys.stream('files.uploaded'), 'svc'))[0]) === 0, { message: 'the ack' });
  });

  it('keeps small payloads inline and refuses payloads above maxPayloadBytes with PayloadTooLargeError', async () => {
    const entryId = await lastValueFrom(client.emit('files.uploaded', { name: 'small.txt', body: 'hello' }));
    expect(await entryOf('files.uploaded', entryId)).toMatchObject({ data: '{"name":"small.txt","body":"hello"}' });
    expect((await entryOf('files.uploaded', entryId)).blob).toBeUndefined();
    await waitFor(() => inbox.received.has('small.txt'));

    const error = await lastValueFrom(client.emit('files.uploaded', { name: 'huge', body: 'x'.repeat(80 * MB) })).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PayloadTooLargeError);
    expect((error as Error).message).toMatch(/above the limit of 83886080 bytes \(streams.maxPayloadBytes\); nothing was written/);
  });

  it('stores a large payload once when an idempotent publish is repeated (the repeated upload is dropped)', async () => {
    const record = () => new RedisStreamsRecordBuilder<Document>({ name: 'once.bin', body: textOf(100_000) }).setIdempotencyKey('once-1').build();
    const blobsBefore = await redis.keys(keys.blobOf(keys.stream('files.uploaded'), '*'));
    const first = await lastValueFrom(client.emit('files.uploaded', record()));
    const again = await lastValueFrom(client.emit('files.uploaded', record()));
    expect(again).toBe(first);
    const { blob } = await entryOf('files.uploaded', first);
    expect(await redis.zrange(keys.blobIndexOf(keys.stream('files.uploaded')), '0', '-1')).toContain(blob);
    expect(await redis.pttl(blobKey('files.uploaded', blob))).toBe(-1); // committed: no upload expiry left
    const blobsAfter = await redis.keys(keys.blobOf(keys.stream('files.uploaded'), '*'));
    expect(blobsAfter.filter((key) => !blobsBefore.includes(key))).toEqual([blobKey('files.uploaded', blob)]);
    await waitFor(() => inbox.received.has('once.bin'));
  });

  it('dead-letters an entry whose blob is gone (decode-failed, with the reason) and keeps consuming', async () => {
    // Written while nobody consumes 'files.archived'; its blob then disappears (trimmed, evicted) before a consumer comes.
    const entryId = await lastValueFrom(client.emit('files.archived', { name: 'lost.bin', body: textOf(200_000) }));
    const { blob } = await entryOf('files.archived', entryId);
    expect(await redis.unlink(blobKey('files.archived', blob))).toBe(1);

    const archive = await startConsumer(config, [ArchiveController], [Inbox]);
    apps.push(archive.app);
    await waitFor(async () => (await deadLetters.count('files.archived')) === 1, { message: 'the dead letter' });
    const [letter] = await deadLetters.list('files.archived');
    expect(letter).toMatchObject({ reason: 'decode-failed', originalId: entryId, errorName: 'MessageDecodeError' });
    expect(letter.errorMessage).toMatch(/claim-checked payload \(blob "[0-9a-f-]{36}"\) is gone/);
    expect(letter.fields.blob).toBe(blob); // the dead letter keeps the reference

    await lastValueFrom(client.emit('files.archived', { name: 'next.bin', body: textOf(200_000) }));
    await waitFor(() => archive.app.get(Inbox).received.has('next.bin'), { message: 'the next message' });
  });

  it('removes blobs with their trimmed entries, but keeps a dead letter\'s blob until the dead letter is gone', async () => {
    const stream = keys.stream('files.reviewed');
    const doc: Document = { name: 'review.bin', body: textOf(300_000) };
    inbox.rejectNext = true;
    const entryId = await lastValueFrom(client.emit('files.reviewed', doc));
    const { blob } = await entryOf('files.reviewed', entryId);
    await waitFor(async () => (await deadLetters.count('files.reviewed')) === 1, { message: 'the dead letter' });

    // The stream is trimmed past the entry: the blob stays, its dead letter refers to it.
    await redis.xtrim(stream, 'MAXLEN', 0);
    await server.sweepBlobsNow();
    expect(await redis.exists(blobKey('files.reviewed', blob))).toBe(1);
    expect(await redis.zcard(keys.blobIndexOf(stream))).toBe(0);

    // Redriven, the message arrives whole, and its blob is indexed under the new entry.
    expect((await deadLetters.redrive('files.reviewed')).redriven).toHaveLength(1);
    await waitFor(() => inbox.received.has('review.bin'), { message: 'the redriven message' });
    expect(sha256(inbox.received.get('review.bin')?.body ?? '')).toBe(sha256(doc.body));
    await server.sweepBlobsNow(); // the dead-letter stream is empty now; the new entry still holds the blob
    expect(await redis.exists(blobKey('files.reviewed', blob))).toBe(1);

    // Once the redriven entry is trimmed too, nothing refers to the blob any more.
    await waitFor(async () => Number((await redis.xpending(stream, 'svc'))[0]) === 0, { message: 'the ack' });
    await redis.xtrim(stream, 'MAXLEN', 0);
    expect(await server.sweepBlobsNow()).toBeGreaterThanOrEqual(1);
    expect(await redis.exists(blobKey('files.reviewed', blob))).toBe(0);
    expect(await redis.zcard(keys.blobIndexOf(stream))).toBe(0);
    expect(await redis.zcard(keys.blobIndexOf(keys.deadLetterOf(stream)))).toBe(0);

    // The 64 MB blob of the first test goes the same way when its stream is trimmed.
    await redis.xtrim(keys.stream('files.uploaded'), 'MAXLEN', 0);
    await server.sweepBlobsNow();
    expect(await redis.zcard(keys.blobIndexOf(keys.stream('files.uploaded')))).toBe(0);
    expect(await redis.keys(keys.blobOf(keys.stream('files.uploaded'), '*'))).toEqual([]);
  });
});
