import { Controller, Inject, Injectable, type INestMicroservice } from '@nestjs/common';
import { Ctx, Payload } from '@nestjs/microservices';
import { lastValueFrom } from 'rxjs';
import {
  RedisStreamsClient,
  RedisStreamsContext,
  ReplayManager,
  ReplayRangeError,
  StreamEvent,
  type RedisStreamsServer,
} from 'nestjs-redis-streams-enterprise';
import { startConsumer, testConfig } from '../support/nest-apps.js';
import { cleanupPrefix, rawRedis, uniquePrefix, type RawRedis } from '../support/redis.js';
import { testKeys } from '../support/keys.js';
import { waitFor } from '../support/wait-for.js';

const T0 = 1_700_000_000_000; // entries are written with explicit ids, so their times are known exactly
const PATTERNS = ['user.account.created', 'user.account.deleted', 'user.profile.created', 'order.created'];

@Injectable()
class Seen {
  readonly live: number[] = [];
  readonly replayed: number[] = [];
}

@Controller()
class UserEventsController {
  constructor(@Inject(Seen) private readonly seen: Seen) {}

  @StreamEvent('user.events')
  onEvent(@Payload() data: { n: number }, @Ctx() ctx: RedisStreamsContext) {
    (ctx.isReplay() ? this.seen.replayed : this.seen.live).push(data.n);
  }

  @StreamEvent('user.account.created')
  onCreated(@Payload() data: { n: number }, @Ctx() ctx: RedisStreamsContext) {
    (ctx.isReplay() ? this.seen.replayed : this.seen.live).push(data.n);
  }
}

describe('replay (real Redis)', () => {
  const prefix = uniquePrefix('replay');
  const keys = testKeys(prefix);
  const stream = keys.stream('user.events');
  const apps: INestMicroservice[] = [];
  let redis: RawRedis;
  let manager: ReplayManager;
  /** n -> [entry id, pattern] of the 3,000 seeded entries: entry n written at T0 + n * 10 ms. */
  const seeded: { n: number; id: string; pattern: string }[] = [];

  beforeAll(async () => {
    redis = rawRedis();
    manager = new ReplayManager(testConfig(prefix, { replay: { enabled: true, batchSize: 250 } }));
    const pipeline = redis.pipeline();
    for (let n = 0; n < 3_000; n++) {
      const id = `${T0 + n * 10}-0`;
      const pattern = PATTERNS[n % PATTERNS.length];
      seeded.push({ n, id, pattern });
      pipeline.xadd(stream, id, 'v', '1', 'pattern', pattern, 'id', `m-${n}`, 'data', JSON.stringify({ n }));
    }
    await pipeline.exec();
  });

  afterAll(async () => {
    await manager.close();
    await Promise.all(apps.map((app) => app.close()));
    await cleanupPrefix(redis, prefix);
    redis.disconnect();
  });

  const copied = async (pattern: string) =>
    (await redis.xrange(keys.stream(pattern), '-', '+')).map(([, f]) => JSON.parse(f[f.indexOf('data') + 1]).n as number);

  it('a time range selects exactly the entries written in it', async () => {
    const result = await manager.replayMessages({
      streamName: 'user.events',
      startTime: T0 + 1_000,
      endTime: new Date(T0 + 1_990),
      target: { stream: 'copy.time' },
    });
    const expected = seeded.filter((e) => e.n >= 100 && e.n <= 199).map((e) => e.n);
    expect(result).toMatchObject({ messagesReplayed: 100, stoppedBy: 'end', firstId: `${T0 + 1_000}-0`, lastId: `${T0 + 1_990}-0` });
    expect(result.validation).toMatchObject({ complete: true, entriesInRange: 100, replayed: 100, skipped: 0, failed: 0 });
    expect(await copied('copy.time')).toEqual(expected);
  });

  it('an id range and a pattern glob select exactly the matching entries; copying twice adds nothing', async () => {
    const request = {
      streamName: 'user.events',
      startId: `${T0 + 5_000}-0`,
      endId: `${T0 + 14_990}-0`,
      filterPattern: 'user.*.created',
      target: { stream: 'copy.glob' },
    } as const;
    const first = await manager.replayMessages(request);
    const expected = seeded.filter((e) => e.n >= 500 && e.n <= 1_499 && /^user\.[^.]+\.created$/.test(e.pattern)).map((e) => e.n);
    expect(first.messagesReplayed).toBe(expected.length);
    expect(first.skipped).toBe(1_000 - expected.length);
    expect(await copied('copy.glob')).toEqual(expected);
    const again = await manager.replayMessages(request);
    expect(again).toMatchObject({ messagesReplayed: 0, skipped: 1_000 }); // selected again, but already copied
    expect(await copied('copy.glob')).toEqual(expected);
    await expect(manager.replayMessages({ streamName: 'user.events', target: { stream: 'user.events' } })).rejects.toThrow(/also a source/);
  });

  it('a predicate on the decoded message selects, and a dry run writes nothing', async () => {
    const result = await manager.replayMessages({
      streamName: 'user.events',
      filter: (m) => (m.data as { n: number }).n % 100 === 0 && m.pattern === 'user.account.created',
      target: { stream: 'copy.dry' },
      dryRun: true,
    });
    expect(result).toMatchObject({ messagesReplayed: 30, dryRun: true, stoppedBy: 'end' });
    expect(await redis.exists(keys.stream('copy.dry'))).toBe(0);
  });

  it('maxMessages, replayTimeout and cancellation stop cleanly and say so', async () => {
    const limited = await manager.replayMessages({ streamName: 'user.events', maxMessages: 42, target: { stream: 'copy.max' } });
    expect(limited).toMatchObject({ messagesReplayed: 42, stoppedBy: 'maxMessages' });
    expect(limited.validation?.complete).toBe(false);
    expect(await copied('copy.max')).toEqual(seeded.slice(0, 42).map((e) => e.n));

    const controller = new AbortController();
    const aborted = await manager.replayMessages({
      streamName: 'user.events',
      target: { stream: 'copy.abort' },
      signal: controller.signal,
      onProgress: (p) => p.scanned >= 500 && controller.abort(),
    });
    expect(aborted.stoppedBy).toBe('aborted');
    expect(aborted.messagesReplayed).toBeLessThan(3_000);

    const slow = new ReplayManager(testConfig(prefix, { replay: { enabled: true, replayTimeout: 1, batchSize: 10 } }));
    try {
      const timedOut = await slow.replayMessages({ streamName: 'user.events', target: { stream: 'copy.timeout' }, filter: () => {
        const until = Date.now() + 2;
        while (Date.now() < until); // each message takes 2 ms: the 1 ms budget runs out at once
        return true;
      } });
      expect(timedOut.stoppedBy).toBe('timeout');
    } finally {
      await slow.close();
    }
  });

  it('preserveOrdering merges several streams into one time-ordered sequence', async () => {
    // Four partition-like streams, entries interleaved in time.
    const parts = ['part.0', 'part.1', 'part.2', 'part.3'];
    // One pipeline per stream: a Redis Cluster pipeline may not span hash slots, and each stream has its own.
    const pipelines = new Map(parts.map((part) => [part, redis.pipeline()]));
    for (let n = 0; n < 400; n++) {
      const part = parts[(n * 7) % 4];
      pipelines.get(part)?.xadd(keys.stream(part), `${T0 + n}-0`, 'data', JSON.stringify({ n }));
    }
    await Promise.all([...pipelines.values()].map((p) => p.exec()));
    const order: string[] = [];
    const result = await manager.replayMessages({
      streamName: parts,
      preserveOrdering: true,
      target: { stream: 'copy.merged' },
      filter: (m) => {
        order.push(m.entryId);
        return true;
      },
    });
    expect(result.messagesReplayed).toBe(400);
    expect(await copied('copy.merged')).toEqual(Array.from({ length: 400 }, (_, n) => n));
    expect(order).toEqual(Array.from({ length: 400 }, (_, n) => `${T0 + n}-0`));
  });

  it('replays to handlers while live consumers run: live work goes on, nothing live is acked twice or lost', async () => {
    const { app, server } = await startConsumer(
      testConfig(prefix, { consumer: { group: 'live', groupStartId: '$' }, replay: { enabled: true } }),
      [UserEventsController],
      [Seen],
    );
    apps.push(app);
    const seen = app.get(Seen);
    const replayer = app.get(ReplayManager);
    const client = new RedisStreamsClient(testConfig(prefix));
    try {
      const live = (async () => {
        for (let n = 10_000; n < 10_300; n++) await lastValueFrom(client.emit('user.events', { n }));
      })();
      const result = await replayer.replayMessages({ streamName: 'user.events', endTime: T0 + 29_990, filterPattern: 'user.events' });
      await live;
      await waitFor(() => seen.live.length === 300, { message: 'the live messages' });
      expect(result.messagesReplayed).toBe(0); // the seeded entries carry their own patterns: none is 'user.events'
      const created = await replayer.replayMessages({ streamName: 'user.events', endTime: T0 + 29_990, filterPattern: 'user.account.created' });
      expect(created).toMatchObject({ messagesReplayed: 750, failed: 0 });
      expect(seen.replayed).toHaveLength(750);
      expect(seen.live.sort((a, b) => a - b)).toEqual(Array.from({ length: 300 }, (_, i) => 10_000 + i));
      await waitFor(async () => Number((await redis.xpending(stream, 'live'))[0]) === 0, { message: 'live acks' });
      expect(server.getMetrics().acked).toBe(300); // replay acknowledged nothing
    } finally {
      await client.close();
    }
  });

  it('a group reset to a time makes the group re-consume exactly the entries from that time on', async () => {
    const result = await manager.replayMessages({ streamName: 'user.events', startTime: T0 + 29_000, endTime: T0 + 29_990, target: { resetGroup: 'rewound' } });
    expect(result.messagesReplayed).toBe(100);
    const read = await redis.xreadgroup('GROUP', 'rewound', 'c', 'COUNT', 1_000, 'STREAMS', stream, '>');
    const ids = ((read as [string, [string, string[]][]][])[0][1]).map(([id]) => id);
    expect(ids.slice(0, 100)).toEqual(seeded.slice(2_900, 3_000).map((e) => e.id));
  });

  it('a group reset to the beginning of time (startTime 0) re-consumes the whole stream', async () => {
    const result = await manager.replayMessages({ streamName: 'user.events', startTime: 0, target: { resetGroup: 'from-zero' } });
    expect(result.firstId).toBe(seeded[0].id);
    const read = await redis.xreadgroup('GROUP', 'from-zero', 'c', 'COUNT', 1, 'STREAMS', stream, '>');
    expect((read as [string, [string, string[]][]][])[0][1][0][0]).toBe(seeded[0].id);
  });

  it('with replay.compression the copy is gzip-compressed and any consumer of this library reads it', async () => {
    const compressing = new ReplayManager(testConfig(prefix, { replay: { enabled: true, compression: true } }));
    try {
      await compressing.replayMessages({ streamName: 'user.events', startTime: T0, endTime: T0 + 90, target: { stream: 'user.compressed' } });
    } finally {
      await compressing.close();
    }
    const [[, fields]] = await redis.xrange(keys.stream('user.compressed'), '-', '+', 'COUNT', 1);
    expect(fields[fields.indexOf('enc') + 1]).toBe('gzip');
    expect(() => JSON.parse(fields[fields.indexOf('data') + 1])).toThrow();
    @Controller()
    class CompressedController {
      readonly seen: unknown[] = [];
      @StreamEvent('user.account.created')
      created(@Payload() data: unknown) {
        this.seen.push(data);
      }
    }
    const { app } = await startConsumer(testConfig(prefix, { consumer: { group: 'reader', patterns: ['user.compressed'] } }), [CompressedController]);
    apps.push(app);
    // entries 0..9 were copied; 0, 4 and 8 are 'user.account.created'
    await waitFor(() => app.get(CompressedController).seen.length === 3, { message: 'the compressed copies' });
    expect(app.get(CompressedController).seen).toEqual([{ n: 0 }, { n: 4 }, { n: 8 }]);
  });

  it('refuses invalid requests with a clear error', async () => {
    await expect(manager.replayMessages({ streamName: 'user.events', startId: 'yesterday', target: { stream: 'x' } })).rejects.toThrow(ReplayRangeError);
    await expect(manager.replayMessages({ streamName: 'user.events', startTime: T0 + 10, endTime: T0, target: { stream: 'x' } })).rejects.toThrow(/starts .* after it ends/);
    await expect(manager.replayMessages({ streamName: 'user.events' })).rejects.toThrow(/needs a RedisStreamsServer/);
    const disabled = new ReplayManager(testConfig(prefix));
    await expect(disabled.replayMessages({ streamName: 'user.events', target: { stream: 'x' } })).rejects.toThrow(/replay is disabled/);
    await disabled.close();
  });
});
