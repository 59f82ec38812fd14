import { Controller, Injectable, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Payload } from '@nestjs/microservices';
import { Test } from '@nestjs/testing';
import { lastValueFrom } from 'rxjs';
import {
  InvalidOptionsError,
  PartitioningManager,
  REDIS_STREAMS_OPTIONS,
  RedisStreamsClient,
  RedisStreamsEnterpriseModule,
  RedisStreamsServer,
  RedisStreamsStatus,
  StreamEvent,
  StreamMessage,
  type ResolvedRedisStreamsConfig,
} from 'nestjs-redis-streams-enterprise';
import { testConfig } from '../support/nest-apps.js';
import { cleanupPrefix, rawRedis, redisUrl, uniquePrefix, type RawRedis } from '../support/redis.js';
import { testKeys } from '../support/keys.js';
import { waitFor } from '../support/wait-for.js';

@Injectable()
class Inbox {
  readonly items: unknown[] = [];
}

@Controller()
class InboxController {
  constructor(private readonly inbox: Inbox) {}

  @StreamEvent('inbox.add')
  add(@Payload() item: unknown) {
    this.inbox.items.push(item);
  }

  @StreamMessage('inbox.size')
  size() {
    return this.inbox.items.length;
  }
}

/** A settings provider standing in for ConfigService. */
@Injectable()
class Settings {
  constructor(readonly prefix: string) {}
}

describe('RedisStreamsEnterpriseModule (real Redis)', () => {
  const prefix = uniquePrefix('module');
  const keys = testKeys(prefix);
  let redis: RawRedis;

  beforeAll(() => {
    redis = rawRedis();
  });

  afterAll(async () => {
    await cleanupPrefix(redis, prefix);
    redis.disconnect();
  });

  it('forRootAsync builds the config from injected providers, globally, and validates it once', async () => {
    @Module({ providers: [{ provide: Settings, useValue: new Settings(prefix) }], exports: [Settings] })
    class SettingsModule {}

    @Module({ controllers: [InboxController], providers: [Inbox] })
    class FeatureModule {}

    const moduleRef = await Test.createTestingModule({
      imports: [
        RedisStreamsEnterpriseModule.forRootAsync({
          imports: [SettingsModule],
          inject: [Settings],
          useFactory: (settings: Settings) => testConfig(settings.prefix, { consumer: { group: 'async' } }),
          isGlobal: true,
        }),
        FeatureModule,
      ],
    }).compile();
    const options = moduleRef.get<ResolvedRedisStreamsConfig>(REDIS_STREAMS_OPTIONS);
    expect(options.streams.keyPrefix).toBe(prefix);
    expect(Object.isFrozen(options)).toBe(true);
    const server = moduleRef.get(RedisStreamsServer);
    expect(server.config).toBe(options);
    const app = moduleRef.createNestMicroservice({ strategy: server });
    app.useLogger(false);
    await app.listen();
    const client = moduleRef.get(RedisStreamsClient);
    await lastValueFrom(client.emit('inbox.add', { id: 1 }));
    await waitFor(() => moduleRef.get(Inbox).items.length === 1);
    await expect(lastValueFrom(client.send('inbox.size', {}))).resolves.toBe(1);
    await app.close();
    // the module's client is closed by Nest's shutdown hooks together with the app
    expect(await lastValueFrom(client.emit('inbox.add', { id: 2 })).catch((e: Error) => e.name)).toBe('ConnectionClosedError');
  });

  it('works in a hybrid app: app.connectMicroservice({ strategy: app.get(RedisStreamsServer) })', async () => {
    @Module({
      imports: [RedisStreamsEnterpriseModule.forRoot(testConfig(prefix, { consumer: { group: 'hybrid', groupStartId: '$' } }))],
      controllers: [InboxController],
      providers: [Inbox],
    })
    class HybridModule {}

    const app = await NestFactory.create(HybridModule, { logger: false });
    app.connectMicroservice({ strategy: app.get(RedisStreamsServer) });
    await app.startAllMicroservices();
    await app.init();
    await lastValueFrom(app.get(RedisStreamsClient).emit('inbox.add', { id: 'h' }));
    await waitFor(() => app.get(Inbox).items.length === 1);
    const server = app.get(RedisStreamsServer);
    await waitFor(async () => (await server.getStatus()).streams.every((s) => s.pending === 0), { message: 'the ack' });
    const status = await server.getStatus();
    expect(status).toMatchObject({ healthy: true, status: RedisStreamsStatus.Connected, group: 'hybrid' });
    expect(status.streams).toEqual(
      expect.arrayContaining([expect.objectContaining({ pattern: 'inbox.add', stream: keys.stream('inbox.add'), pending: 0, lag: 0, consumers: 1 })]),
    );
    expect(server.getMetrics()).toMatchObject({ received: 1, acked: 1, failed: 0 });
    await app.close();
  });

  it('fails at start with every invalid field named, for forRoot and for forRootAsync', async () => {
    const bad = { connection: { url: redisUrl() }, consumer: { blockMs: 0, group: 'white space' }, retry: { attempts: 0 } };
    const forRoot = Test.createTestingModule({ imports: [RedisStreamsEnterpriseModule.forRoot(bad)] }).compile();
    await expect(forRoot).rejects.toThrow(InvalidOptionsError);
    await expect(forRoot).rejects.toThrow(/consumer\.blockMs must not be less than 1/);
    await expect(forRoot).rejects.toThrow(/consumer\.group must be 1-128 characters/);
    await expect(forRoot).rejects.toThrow(/retry\.attempts must not be less than 1/);
    const forRootAsync = Test.createTestingModule({
      imports: [RedisStreamsEnterpriseModule.forRootAsync({ useFactory: async () => ({ streams: { keyPrefix: 'bad prefix!' } }) })],
    }).compile();
    await expect(forRootAsync).rejects.toThrow(/streams\.keyPrefix must be 1-64 characters/);
    expect(() => new RedisStreamsServer({ consumer: { concurrency: -5 } })).toThrow(/consumer\.concurrency must not be less than 1/);
    expect(() => new RedisStreamsClient({ client: { requestTimeoutMs: 0 } })).toThrow(/client\.requestTimeoutMs/);
  });

  it('refuses a contradictory ordering configuration at start, naming the field and the way out', () => {
    expect(
      () => new RedisStreamsServer(testConfig(prefix, { ordering: { enabled: true, strategy: 'global' }, partitioning: { enabled: true, partitionCount: 4 } })),
    ).toThrow(/ordering\.strategy 'global' keeps one total order per topic, which needs a single partition/);
    expect(() => new RedisStreamsClient(testConfig(prefix, { partitioning: { enabled: true, strategy: 'hash', autoScaling: true } }))).toThrow(
      /partitioning\.autoScaling needs partitioning\.strategy 'dynamic'/,
    );
  });

  it('PartitioningManager.route() from DI changes nothing: keyless emits of roundRobin still visit every partition in turn', async () => {
    const moduleRef = await Test.createTestingModule({
      imports: [RedisStreamsEnterpriseModule.forRoot(testConfig(prefix, { partitioning: { enabled: true, strategy: 'roundRobin', partitionCount: 4 } }))],
    }).compile();
    try {
      const client = moduleRef.get(RedisStreamsClient);
      const partitioning = moduleRef.get(PartitioningManager);
      const previews: number[] = [];
      for (let i = 0; i < 40; i++) {
        previews.push((await partitioning.route('rr.spread', { i })).partition);
        await lastValueFrom(client.emit('rr.spread', { i }));
      }
      const lengths = await Promise.all([0, 1, 2, 3].map((p) => redis.xlen(partitioning.streamOf('rr.spread', p))));
      expect(lengths).toEqual([10, 10, 10, 10]);
      // Each preview named the partition the next emit then took.
      expect(previews).toEqual(Array.from({ length: 40 }, (_, i) => i % 4));
    } finally {
      await moduleRef.close();
    }
  });

  it('fails listen() with a clear error when Redis is unreachable, and leaves nothing running', async () => {
    const server = new RedisStreamsServer(testConfig(prefix, { connection: { url: 'redis://127.0.0.1:1' } }));
    const app = await NestFactory.createMicroservice(class EmptyModule {}, { strategy: server, logger: false });
    await expect(app.listen()).rejects.toThrow('Cannot connect to Redis at redis://127.0.0.1:1 (connect ECONNREFUSED 127.0.0.1:1)');
    await app.close();
  });
});
