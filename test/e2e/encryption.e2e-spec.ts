import { Controller, Inject, Injectable, Module, type INestMicroservice, type LoggerService } from '@nestjs/common';
import { Ctx, MessagePattern, Payload } from '@nestjs/microservices';
import { Test } from '@nestjs/testing';
import { randomBytes, randomUUID } from 'node:crypto';
import { lastValueFrom } from 'rxjs';
import {
  DeadLetterManager,
  EncryptionKeyProvider,
  RedisStreamsClient,
  RedisStreamsContext,
  RedisStreamsEnterpriseModule,
  RedisStreamsRecordBuilder,
  RedisStreamsServer,
  ReplayManager,
  StreamEvent,
  type EncryptionKey,
  type ReplayedMessage,
  type RedisStreamsEnterpriseConfig,
} from 'nestjs-redis-streams-enterprise';
import { startConsumer, testConfig } from '../support/nest-apps.js';
import { cleanupPrefix, keysMatching, rawRedis, uniquePrefix, type RawRedis } from '../support/redis.js';
import { testKeys } from '../support/keys.js';
import { waitFor } from '../support/wait-for.js';

const KEY_1 = randomBytes(32).toString('base64');
const KEY_2 = randomBytes(32).toString('base64');
/** Plaintext that must never reach Redis nor a log line. */
const SECRET = `pan-${randomUUID()}`;
const HEADER_SECRET = `ssn-${randomUUID()}`;

interface Received {
  readonly pattern: string;
  readonly data: { card?: string; n?: number };
  readonly headers: Record<string, string>;
  readonly messageId: string;
}

@Injectable()
class Inbox {
  readonly received: Received[] = [];
  count(pattern: string, n?: number): number {
    return this.received.filter((r) => r.pattern === pattern && (n === undefined || r.data.n === n)).length;
  }
}

@Controller()
class PaymentsController {
  constructor(@Inject(Inbox) private readonly inbox: Inbox) {}

  @StreamEvent('pay.captured')
  captured(@Payload() data: Received['data'] & { reject?: boolean; forward?: boolean }, @Ctx() ctx: RedisStreamsContext) {
    if (data.reject) return ctx.deadLetter('refused by the test');
    if (data.forward) ctx.transaction().emit('pay.refunded', { card: data.card, n: (data.n ?? 0) + 100 });
    this.inbox.received.push({ pattern: 'pay.captured', data, headers: { ...ctx.getHeaders() }, messageId: ctx.getMessageId() });
  }

  @StreamEvent('pay.refunded')
  refunded(@Payload() data: Received['data'], @Ctx() ctx: RedisStreamsContext) {
    this.inbox.received.push({ pattern: 'pay.refunded', data, headers: { ...ctx.getHeaders() }, messageId: ctx.getMessageId() });
  }

  // Reads the stream replay copies go to (the copies name their own pattern, pay.captured).
  @StreamEvent('pay.audit')
  audit(@Payload() data: Received['data'], @Ctx() ctx: RedisStreamsContext) {
    this.inbox.received.push({ pattern: 'pay.audit', data, headers: { ...ctx.getHeaders() }, messageId: ctx.getMessageId() });
  }

  @MessagePattern('pay.lookup')
  lookup(@Payload() query: { n: number }) {
    return { card: SECRET, n: query.n };
  }
}

@Controller()
class RotatedController {
  constructor(@Inject(Inbox) private readonly inbox: Inbox) {}

  @StreamEvent('pay.rotated')
  rotated(@Payload() data: Received['data'], @Ctx() ctx: RedisStreamsContext) {
    this.inbox.received.push({ pattern: 'pay.rotated', data, headers: { ...ctx.getHeaders() }, messageId: ctx.getMessageId() });
  }

}

@Controller()
class KmsController {
  constructor(@Inject(Inbox) private readonly inbox: Inbox) {}

  @StreamEvent('pay.kms')
  kms(@Payload() data: Received['data'], @Ctx() ctx: RedisStreamsContext) {
    this.inbox.received.push({ pattern: 'pay.kms', data, headers: { ...ctx.getHeaders() }, messageId: ctx.getMessageId() });
  }
}

@Controller()
class PartitionedController {
  constructor(@Inject(Inbox) private readonly inbox: Inbox) {}

  @StreamEvent('pay.partitioned')
  partitioned(@Payload() data: Received['data'] & { key: string }, @Ctx() ctx: RedisStreamsContext) {
    this.inbox.received.push({ pattern: 'pay.partitioned', data, headers: { key: data.key, partition: String(ctx.getPartition()) }, messageId: ctx.getMessageId() });
  }
}

/** Every log line of the apps, at every level. */
class CapturingLogger implements LoggerService {
  readonly lines: string[] = [];
  private add(level: string, args: unknown[]) {
    this.lines.push(`${level} ${args.map((a) => (a instanceof Error ? `${a.message} ${a.stack}` : String(a))).join(' ')}`);
  }
  log = (...args: unknown[]) => this.add('log', args);
  error = (...args: unknown[]) => this.add('error', args);
  warn = (...args: unknown[]) => this.add('warn', args);
  debug = (...args: unknown[]) => this.add('debug', args);
  verbose = (...args: unknown[]) => this.add('verbose', args);
  fatal = (...args: unknown[]) => this.add('fatal', args);
}

describe('end-to-end encryption (real Redis)', () => {
  const prefix = uniquePrefix('encryption');
  const keys = testKeys(prefix);
  const encryption = { enabled: true, keys: [{ id: 'k1', key: KEY_1 }], encryptHeaders: ['x-ssn'] };
  const config: RedisStreamsEnterpriseConfig = testConfig(prefix, {
    encryption,
    streams: { claimCheckThresholdBytes: 20_000 },
    replay: { enabled: true },
  });
  const rotatedConfig = testConfig(prefix, { encryption: { ...encryption, keys: [{ id: 'k1', key: KEY_1 }, { id: 'k2', key: KEY_2 }] } });
  const logs = new CapturingLogger();
  const apps: INestMicroservice[] = [];
  const closables: { close(): Promise<void> }[] = [];
  let redis: RawRedis;
  let client: RedisStreamsClient;
  let inbox: Inbox;
  let deadLetters: DeadLetterManager;

  const entries = async (stream: string) =>
    (await redis.xrange(stream, '-', '+')).map(([id, list]) => ({ id, fields: Object.fromEntries(list.flatMap((v, i) => (i % 2 === 0 ? [[v, list[i + 1]]] : []))) as Record<string, string> }));
  const reasons = async (pattern: string) => (await deadLetters.list(pattern)).map((letter) => letter.reason);

  beforeAll(async () => {
    redis = rawRedis();
    const started = await startConsumer(config, [PaymentsController], [Inbox]);
    started.app.useLogger(logs);
    apps.push(started.app);
    client = started.client;
    inbox = started.app.get(Inbox);
    deadLetters = new DeadLetterManager(config);
    closables.push(deadLetters);
  });

  afterAll(async () => {
    for (const c of closables) await c.close();
    await client.close();
    await Promise.all(apps.map((app) => app.close()));
    await cleanupPrefix(redis, prefix);
    redis.disconnect();
  });

  it('keeps every copy in Redis encrypted: the stream, a dead letter, a replay copy, a claim-check blob and a reply', async () => {
    const record = new RedisStreamsRecordBuilder({ card: SECRET, n: 1 }).setHeaders({ 'x-ssn': HEADER_SECRET, tenant: 'acme' }).build();
    await lastValueFrom(client.emit('pay.captured', record));
    await lastValueFrom(client.emit('pay.captured', { card: SECRET, n: 2, padding: 'p'.repeat(30_000) })); // claim-checked
    await lastValueFrom(client.emit('pay.captured', { card: SECRET, n: 3, reject: true })); // dead-lettered
    await expect(lastValueFrom(client.send('pay.lookup', { n: 4 }))).resolves.toEqual({ card: SECRET, n: 4 });
    await waitFor(() => inbox.count('pay.captured') === 2, { message: 'both messages' });
    await waitFor(async () => (await deadLetters.count('pay.captured')) === 1, { message: 'the dead letter' });
    const first = inbox.received.find((r) => r.data.n === 1);
    expect(first).toMatchObject({ data: { card: SECRET }, headers: { 'x-ssn': HEADER_SECRET, tenant: 'acme' } });
    const replay = new ReplayManager(config);
    closables.push(replay);
    // The filter sees the decrypted payload (the copies themselves stay as they were written). A filter does not
    // fetch claim-checked payloads, so the large message counts as failed, as without encryption.
    const filter = (m: ReplayedMessage) => (m.data as { card?: string }).card === SECRET;
    const result = await replay.replayMessages({ streamName: 'pay.captured', target: { stream: 'pay.audit' }, filter });
    expect([result.replayed, result.failed]).toEqual([2, 1]);
    // A copy still decrypts (bound to its own pattern) and reaches the pay.captured handler again.
    await waitFor(() => inbox.count('pay.captured', 1) === 2, { message: 'the replayed copy' }).catch(async (e) => {
      throw new Error(`${e}: ${JSON.stringify((await deadLetters.list('pay.audit')).map((l) => [l.reason, l.errorMessage]))}`);
    });

    const written = await entries(keys.stream('pay.captured'));
    expect(written).toHaveLength(3);
    for (const { fields } of written) expect(fields).toMatchObject({ enc: 'aes256gcm', kid: 'k1' });
    expect(written[0].fields.eheaders).toBeDefined();
    expect(JSON.parse(written[0].fields.headers)).toEqual({ tenant: 'acme' });
    expect(written[1].fields.blob).toBeDefined();
    expect(await redis.get(keys.blobOf(keys.stream('pay.captured'), written[1].fields.blob))).toMatch(/^[A-Za-z0-9+/=]+$/);
    expect((await deadLetters.list('pay.captured'))[0].fields).toMatchObject({ enc: 'aes256gcm', kid: 'k1' });
    const replies = await entries(keys.replyStream(client.clientId));
    expect(replies.length).toBeGreaterThan(0);
    for (const { fields } of replies) expect(fields).toMatchObject({ enc: 'aes256gcm', kid: 'k1' });
    expect(await entries(keys.stream('pay.audit'))).toHaveLength(2);

    // Nothing under the prefix holds the plaintext: every stream entry, string, hash and sorted set is read.
    const dump: string[] = [];
    for (const key of await keysMatching(redis, `${prefix}:*`)) {
      const type = await redis.type(key);
      if (type === 'stream') dump.push(JSON.stringify(await redis.xrange(key, '-', '+')));
      else if (type === 'string') dump.push(String(await redis.get(key)));
      else if (type === 'hash') dump.push(JSON.stringify(await redis.hgetall(key)));
      else if (type === 'zset') dump.push(JSON.stringify(await redis.zrange(key, '0', '-1')));
    }
    const everything = dump.join('\n');
    expect(everything).toContain('rse.replay.from'); // the dump did read the replay copies
    for (const secret of [SECRET, HEADER_SECRET, '"card"', 'pppppppp']) expect(everything).not.toContain(secret);
  });

  it('encrypts what a handler emits in its transaction', async () => {
    await lastValueFrom(client.emit('pay.captured', { card: SECRET, n: 5, forward: true }));
    await waitFor(() => inbox.count('pay.refunded', 105) === 1, { message: 'the transactional emit' });
    expect(inbox.received.find((r) => r.data.n === 105)?.data.card).toBe(SECRET);
    const refunded = await entries(keys.stream('pay.refunded'));
    expect(refunded).toHaveLength(1);
    expect(refunded[0].fields).toMatchObject({ enc: 'aes256gcm', kid: 'k1' });
    expect(JSON.stringify(refunded)).not.toContain(SECRET);
  });

  it('binds a ciphertext to its stream: copied into another pattern\'s stream it is dead-lettered decrypt-failed, unhandled', async () => {
    const entryId = await lastValueFrom(client.emit('pay.captured', { card: SECRET, n: 10 }));
    await waitFor(() => inbox.count('pay.captured', 10) === 1);
    const [{ fields }] = (await entries(keys.stream('pay.captured'))).filter((e) => e.id === entryId);
    await redis.xadd(keys.stream('pay.refunded'), '*', ...Object.entries(fields).flat());
    await redis.xadd(keys.stream('pay.refunded'), '*', ...Object.entries({ ...fields, pattern: 'pay.refunded' }).flat());
    await waitFor(async () => (await deadLetters.count('pay.refunded')) === 2, { message: 'two dead letters' });
    expect(await reasons('pay.refunded')).toEqual(['decrypt-failed', 'decrypt-failed']);
    const messages = (await deadLetters.list('pay.refunded')).map((l) => l.errorMessage);
    expect(messages.some((m) => /encrypted for pattern "pay.captured", not for the stream it was read from/.test(m))).toBe(true);
    expect(messages.some((m) => /authentication failed/.test(m))).toBe(true);
    // Still consuming; neither handler saw the moved ciphertext.
    await lastValueFrom(client.emit('pay.refunded', { n: 11 }));
    await waitFor(() => inbox.count('pay.refunded', 11) === 1, { message: 'the next message' });
    expect(inbox.count('pay.refunded', 10) + inbox.count('pay.captured', 10)).toBe(1);
  });

  it('replays encrypted messages to the handlers, decrypted, and counts entries moved in from another stream as failed', async () => {
    const handled = inbox.count('pay.refunded', 11);
    const result = await apps[0].get(ReplayManager).replayMessages({ streamName: 'pay.refunded', target: 'handlers' });
    expect(inbox.count('pay.refunded', 11)).toBe(handled + 1);
    expect(inbox.received.filter((r) => r.data.n === 105).map((r) => r.data.card)).toEqual([SECRET, SECRET]);
    expect([result.replayed, result.failed]).toEqual([2, 2]);
  });

  it('dead-letters tampered, truncated and unknown-key messages (decrypt-failed), keeps running, and logs no plaintext or key', async () => {
    const entryId = await lastValueFrom(client.emit('pay.captured', { card: SECRET, n: 20 }));
    await waitFor(() => inbox.count('pay.captured', 20) === 1);
    const [{ fields }] = (await entries(keys.stream('pay.captured'))).filter((e) => e.id === entryId);
    const flipped = Buffer.from(fields.data, 'base64');
    flipped[20] ^= 0x01;
    const forged = [
      { ...fields, data: flipped.toString('base64') },
      { ...fields, data: fields.data.slice(0, 24) },
      { ...fields, kid: 'k9' },
      { ...fields, enc: 'zstd+aes256gcm' },
    ];
    const before = await deadLetters.count('pay.captured');
    for (const f of forged) await redis.xadd(keys.stream('pay.captured'), '*', ...Object.entries(f).flat());
    await waitFor(async () => (await deadLetters.count('pay.captured')) === before + 4, { message: 'four dead letters' });
    const letters = (await deadLetters.list('pay.captured')).slice(-4);
    expect(letters.map((l) => l.reason)).toEqual(['decrypt-failed', 'decrypt-failed', 'decrypt-failed', 'codec-unavailable']);
    expect(letters[1].errorMessage).toMatch(/authentication failed|truncated/);
    expect(letters[2].errorMessage).toMatch(/no key with id "k9"/);
    expect(letters[3].errorMessage).toMatch(/unknown codec "zstd"/);
    await lastValueFrom(client.emit('pay.captured', { n: 21 }));
    await waitFor(() => inbox.count('pay.captured', 21) === 1, { message: 'the next message' });
    expect(inbox.count('pay.captured', 20)).toBe(1);

    const logged = logs.lines.join('\n');
    expect(logged).toMatch(/dead-lettered \(decrypt-failed\)/);
    for (const secret of [SECRET, HEADER_SECRET, KEY_1, KEY_2, Buffer.from(KEY_1, 'base64').toString('hex')]) expect(logged).not.toContain(secret);
  });

  it('rotates keys: a message encrypted with the old key still decrypts once a new key is added, and new messages use it', async () => {
    const oldClient = new RedisStreamsClient(config);
    closables.push(oldClient);
    const before = await lastValueFrom(oldClient.emit('pay.rotated', { n: 30 }));
    const rotated = await startConsumer(rotatedConfig, [RotatedController], [Inbox]);
    apps.push(rotated.app);
    const after = await lastValueFrom(rotated.client.emit('pay.rotated', { n: 31 }));
    const kids = Object.fromEntries((await entries(keys.stream('pay.rotated'))).map((e) => [e.id, e.fields.kid]));
    expect([kids[before], kids[after]]).toEqual(['k1', 'k2']);
    const got = rotated.app.get(Inbox);
    await waitFor(() => got.count('pay.rotated', 30) === 1 && got.count('pay.rotated', 31) === 1, { message: 'both keys' });
  });

  it('encrypts partitioned, ordered topics: each partition stream holds ciphertext, each key keeps its order', async () => {
    const partitioned = await startConsumer(
      testConfig(prefix, {
        encryption,
        consumer: { group: 'part' },
        partitioning: { enabled: true, strategy: 'hash', partitionCount: 2, partitionKey: 'key', sessionTimeoutMs: 1_500 },
        ordering: { enabled: true, strategy: 'partition', partitionKey: 'key' },
      }),
      [PartitionedController],
      [Inbox],
    );
    apps.push(partitioned.app);
    for (let n = 0; n < 40; n++) await lastValueFrom(partitioned.client.emit('pay.partitioned', { key: `k${n % 4}`, n, card: SECRET }));
    const got = partitioned.app.get(Inbox);
    await waitFor(() => got.count('pay.partitioned') === 40, { message: '40 partitioned messages' });
    for (let k = 0; k < 4; k++) {
      const ns = got.received.filter((r) => r.headers.key === `k${k}`).map((r) => r.data.n as number);
      expect(ns).toEqual([...ns].sort((a, b) => a - b));
    }
    const stored = [...(await entries(keys.partition('pay.partitioned', 0))), ...(await entries(keys.partition('pay.partitioned', 1)))];
    expect(stored.filter((e) => e.fields.enc === 'aes256gcm')).toHaveLength(40);
    expect(JSON.stringify(stored)).not.toContain(SECRET);
  });

  it('takes its keys from a KMS provider injected through forRootAsync, and refuses a wrong key length at start', async () => {
    const kmsKeys: EncryptionKey[] = [{ id: 'kms-2026', key: randomBytes(32) }];
    @Injectable()
    class FakeKms {
      async dataKeys(): Promise<EncryptionKey[]> {
        return kmsKeys;
      }
    }
    @Injectable()
    class KmsKeys extends EncryptionKeyProvider {
      constructor(@Inject(FakeKms) private readonly kms: FakeKms) {
        super();
      }
      getKeys() {
        return this.kms.dataKeys();
      }
    }
    @Module({ providers: [FakeKms, { provide: EncryptionKeyProvider, useClass: KmsKeys }], exports: [EncryptionKeyProvider] })
    class KmsModule {}
    const moduleRef = await Test.createTestingModule({
      imports: [
        RedisStreamsEnterpriseModule.forRootAsync({
          imports: [KmsModule],
          useFactory: () => testConfig(prefix, { encryption: { enabled: true, keyProvider: 'external' }, consumer: { group: 'kms' } }),
        }),
      ],
      controllers: [KmsController],
      providers: [Inbox],
    }).compile();
    const app = moduleRef.createNestMicroservice({ strategy: moduleRef.get(RedisStreamsServer) });
    app.useLogger(['error']);
    apps.push(app);
    await app.listen();
    const kmsClient = moduleRef.get(RedisStreamsClient);
    const id = await lastValueFrom(kmsClient.emit('pay.kms', { card: SECRET, n: 40 }));
    await waitFor(() => app.get(Inbox).count('pay.kms', 40) === 1, { message: 'the KMS-encrypted message' });
    expect((await entries(keys.stream('pay.kms'))).find((e) => e.id === id)?.fields.kid).toBe('kms-2026');

    const short = randomBytes(16).toString('base64');
    const failing = Test.createTestingModule({
      imports: [RedisStreamsEnterpriseModule.forRoot(testConfig(prefix, { encryption: { enabled: true, keys: [{ id: 'k1', key: short }] } }))],
    }).compile();
    const error = (await failing.catch((e: unknown) => e)) as Error;
    expect(error.message).toMatch(/encryption\.keys\.0\.key must be 32 bytes/);
    expect(error.message).not.toContain(short);
  });
});
