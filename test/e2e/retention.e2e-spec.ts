/**
 * Retention (streams.maxLen / retentionMs) against a group whose consumer died with entries pending (issue 12, item 6):
 * 'safe' trimming keeps what a group still needs and says so; 'hard' trimming deletes it, counts exactly what each
 * group lost and warns before it happens. The dead consumer is simulated by an XREADGROUP under a name that never acks.
 */
import { Controller, Logger, type INestMicroservice, type LoggerService, type Type } from '@nestjs/common';
import { Ctx, EventPattern } from '@nestjs/microservices';
import { lastValueFrom } from 'rxjs';
import { RedisStreamsClient, RedisStreamsContext, type RedisStreamsEnterpriseConfig } from 'nestjs-redis-streams-enterprise';
import { validateOptions } from '../../libs/redis-streams-enterprise/src/config/validate-options.js';
import { defineScripts } from '../../libs/redis-streams-enterprise/src/connection/scripts.js';
import { testKeys } from '../support/keys.js';
import { compareIds } from '../../libs/redis-streams-enterprise/src/retention/retention-policy.js';
import { streamStatus } from '../../libs/redis-streams-enterprise/src/transport/server-status.js';
import { startConsumer, testConfig } from '../support/nest-apps.js';
import { cleanupPrefix, rawRedis, uniquePrefix } from '../support/redis.js';
import { waitFor } from '../support/wait-for.js';
import type { Redis } from 'ioredis';

const handled = new Map<string, Set<string>>();

function note(ctx: RedisStreamsContext) {
  const ids = handled.get(ctx.getPattern()) ?? new Set<string>();
  ids.add(ctx.getEntryId());
  handled.set(ctx.getPattern(), ids);
}

// One controller per test: a server creates groups on, and reads, only the streams of its own patterns.
@Controller()
class SafeController {
  @EventPattern<string>('retention.safe')
  handle(_: unknown, @Ctx() ctx: RedisStreamsContext) {
    note(ctx);
  }
}

@Controller()
class HardController {
  @EventPattern<string>('retention.hard')
  handle(_: unknown, @Ctx() ctx: RedisStreamsContext) {
    note(ctx);
  }
}

@Controller()
class TimeController {
  @EventPattern<string>('retention.time')
  handle(_: unknown, @Ctx() ctx: RedisStreamsContext) {
    note(ctx);
  }
}

/** Every warn/error line of the library, to prove what the producer logged and when. */
class RecordingLogger implements LoggerService {
  readonly lines: { level: string; message: string }[] = [];
  log() {}
  setLogLevels() {}
  debug() {}
  verbose() {}
  warn(message: unknown) {
    this.lines.push({ level: 'warn', message: String(message) });
  }
  error(message: unknown) {
    this.lines.push({ level: 'error', message: String(message) });
  }
  about(stream: string, text: RegExp) {
    return this.lines.filter((l) => l.message.includes(`stream=${stream} `) && text.test(l.message));
  }
}

describe('retention of a stream whose group lags (real Redis)', () => {
  const prefix = uniquePrefix('retention');
  const keys = testKeys(prefix);
  const redis = rawRedis() as Redis;
  const scripted = defineScripts(redis);
  const logs = new RecordingLogger();
  const apps: INestMicroservice[] = [];
  const clients: RedisStreamsClient[] = [];

  // Booting a Nest app installs its own logger: each test (and each boot) puts the recorder back.
  beforeEach(() => Logger.overrideLogger(logs));

  async function start(config: RedisStreamsEnterpriseConfig, controllers: Type[]) {
    const started = await startConsumer(config, controllers);
    apps.push(started.app);
    Logger.overrideLogger(logs);
    return started;
  }

  afterAll(async () => {
    for (const app of apps) await app.close();
    for (const client of clients) await client.close();
    await cleanupPrefix(redis, prefix);
    redis.disconnect();
  });

  /** The group with 40 entries read by a consumer that then died, and a producer that goes on writing. */
  async function deadConsumerScenario(pattern: string, config: RedisStreamsEnterpriseConfig) {
    const stream = keys.stream(pattern);
    await redis.xgroup('CREATE', stream, 'svc', '0', 'MKSTREAM');
    const producer = new RedisStreamsClient(config);
    clients.push(producer);
    const emit = async (n: number) => lastValueFrom(producer.emit<string>(pattern, { n }));
    const published: string[] = [];
    for (let n = 0; n < 40; n++) published.push(await emit(n));
    const read = (await redis.xreadgroup('GROUP', 'svc', 'dead-consumer', 'COUNT', 40, 'STREAMS', stream, '>')) as [string, [string, string[]][]][];
    const pendingIds = read[0][1].map(([id]) => id);
    expect(pendingIds).toEqual(published);
    return { stream, producer, emit, published, pendingIds };
  }

  const statusOf = (config: RedisStreamsEnterpriseConfig, pattern: string) => streamStatus(scripted, validateOptions(config), pattern, keys.stream(pattern));

  it("'safe' (the default): a dead consumer's 40 pending and 1,000 later entries are all kept, then all handled; the stream shrinks back once the group caught up", async () => {
    const config = testConfig(prefix, { streams: { maxLen: 200 } });
    const { stream, emit, published } = await deadConsumerScenario('retention.safe', config);
    for (let n = 40; n < 1_040; n++) published.push(await emit(n));

    // Nothing the group needs was trimmed, and that is reported: in the status, and once in the producer's log.
    const held = await statusOf(config, 'retention.safe');
    expect(await redis.xlen(stream)).toBe(1_040);
    expect(held.retention).toMatchObject({ trimming: 'safe', length: 1_040, behindLimit: ['svc'], entriesOverLimit: 840 });
    expect(held.retention?.groups).toEqual([
      // 1,000 unread are more than one status call counts (RETENTION_SCAN_MAX): Redis' lag says it, exact before any loss.
      expect.objectContaining({ group: 'svc', pending: 40, lag: 1_000, oldestNeededId: published[0], lostPending: 0 }),
    ]);
    expect(held.warnings.join(' ')).toMatch(/retention of .* is held back by group svc: 1040 entries kept \(840 over streams\.maxLen/);
    await waitFor(() => logs.about(stream, /Retention held back/).length > 0, { message: "the producer's hold-back warning" });
    expect(logs.about(stream, /Retention held back/)).toHaveLength(1); // once per state change, not per write

    // A new consumer handles every entry: the 1,000 it reads and the 40 it reclaims from the dead one.
    const { server } = await start(config, [SafeController]);
    await waitFor(() => (handled.get('retention.safe')?.size ?? 0) === 1_040, { timeoutMs: 20_000, message: 'all 1,040 entries handled' });
    expect([...(handled.get('retention.safe') ?? [])].sort()).toEqual([...published].sort());
    expect(server.getMetrics()).toMatchObject({ lostToTrimming: 0, lostUnreadToTrimming: 0 });

    // Caught up: the consumer's retention pass trims the stream down to about maxLen (approximate: whole nodes).
    await waitFor(async () => (await redis.xlen(stream)) < 300, { timeoutMs: 15_000, message: 'the stream trimmed back to about maxLen' });
    const after = (await server.getStatus()).streams[0];
    expect(after.retention).toMatchObject({ behindLimit: [], entriesOverLimit: 0 });
    expect(after.retention!.length).toBeGreaterThanOrEqual(200);
  });

  it("'hard': warns before the first loss, then counts exactly what the group lost (never read + pending)", async () => {
    const config = testConfig(prefix, { streams: { maxLen: 200, trimming: 'hard' } });
    const { stream, emit, published, pendingIds } = await deadConsumerScenario('retention.hard', config);
    let warnedAt: number | undefined;
    let firstLossAt: number | undefined;
    for (let n = 40; n < 1_040; n++) {
      published.push(await emit(n));
      warnedAt ??= logs.about(stream, /close to losing entries/).length > 0 ? n : undefined;
      if (firstLossAt === undefined && (await redis.xlen(stream)) < n + 1) firstLossAt = n;
    }
    expect(warnedAt).toBeDefined();
    expect(firstLossAt).toBeDefined();
    expect(warnedAt!).toBeLessThan(firstLossAt!);
    expect(logs.about(stream, /close to losing entries/)).toHaveLength(1);
    await waitFor(() => logs.about(stream, /Trimming is deleting entries the group has not processed/).length > 0, { message: 'the loss in the log' });

    // What was deleted, from the ids themselves: everything before the stream's first entry.
    const [[firstId]] = (await redis.xrange(stream, '-', '+', 'COUNT', 1)) as [string, string[]][];
    const removed = published.filter((id) => compareIds(id, firstId) < 0);
    const removedUnread = removed.filter((id) => !pendingIds.includes(id)).length;
    expect(removed.length).toBe(1_040 - (await redis.xlen(stream)));
    const before = await statusOf(config, 'retention.hard');
    expect(before.retention?.groups).toEqual([expect.objectContaining({ group: 'svc', lostUnread: removedUnread, lostPending: 40 })]);
    expect(before.warnings.join(' ')).toContain(`group svc lost entries of ${stream} to trimming before processing them: ${removedUnread} never read, 40 pending`);

    // A new consumer handles what is left and reports the losses: the 40 pending when it reclaims them, the rest
    // from Redis' counters.
    const { server } = await start(config, [HardController]);
    const kept = published.filter((id) => !removed.includes(id));
    await waitFor(() => (handled.get('retention.hard')?.size ?? 0) === kept.length, { timeoutMs: 20_000, message: 'the kept entries handled' });
    expect([...(handled.get('retention.hard') ?? [])].sort()).toEqual([...kept].sort());
    await waitFor(() => server.getMetrics().lostToTrimming === 40 && server.getMetrics().lostUnreadToTrimming === removedUnread, {
      timeoutMs: 15_000,
      message: `lostToTrimming 40 and lostUnreadToTrimming ${removedUnread}`,
    });
    const after = (await server.getStatus()).streams[0].retention!;
    expect(after.groups).toEqual([expect.objectContaining({ group: 'svc', unread: 0, lostUnread: removedUnread })]);
    expect(removedUnread + 40 + kept.length).toBe(1_040);
  });

  it("'safe' with retentionMs: entries older than the limit are kept while the group still needs them", async () => {
    const config = testConfig(prefix, { streams: { retentionMs: 1_000 } });
    const { stream, emit, published } = await deadConsumerScenario('retention.time', config);
    // Writing on past the time limit: every 100 writes the producer runs the retention step.
    let n = 40;
    await waitFor(
      async () => {
        for (let i = 0; i < 20; i++) published.push(await emit(n++));
        return logs.about(stream, /Retention held back/).length > 0;
      },
      { timeoutMs: 15_000, message: 'the hold-back by age' },
    );
    const [[firstId]] = (await redis.xrange(stream, '-', '+', 'COUNT', 1)) as [string, string[]][];
    expect(firstId).toBe(published[0]);
    const held = await statusOf(config, 'retention.time');
    expect(held.retention).toMatchObject({ behindLimit: ['svc'] });
    expect(held.retention!.ageOverLimitMs).toBeGreaterThan(0);

    await start(config, [TimeController]);
    await waitFor(() => (handled.get('retention.time')?.size ?? 0) === published.length, { timeoutMs: 20_000, message: 'every entry handled' });
    expect([...(handled.get('retention.time') ?? [])].sort()).toEqual([...published].sort());
    // Caught up and older than retentionMs: the consumer's pass (every second here) trims them.
    await waitFor(async () => (await redis.xlen(stream)) < published.length, { timeoutMs: 10_000, message: 'the old entries trimmed' });
  });
});
