import { Controller, Inject, Injectable } from '@nestjs/common';
import { Ctx, Payload } from '@nestjs/microservices';
import type { INestMicroservice } from '@nestjs/common';
import { lastValueFrom } from 'rxjs';
import { RedisStreamsClient, RedisStreamsContext, StreamEvent } from 'nestjs-redis-streams-enterprise';
import { startConsumer, testConfig } from '../support/nest-apps.js';
import { cleanupPrefix, rawRedis, uniquePrefix, type RawRedis } from '../support/redis.js';
import { testKeys } from '../support/keys.js';
import { expectNothingWithin, waitFor } from '../support/wait-for.js';

@Injectable()
class Work {
  readonly done: { job: number; deliveryCount: number; consumer: string }[] = [];
  readonly started: number[] = [];
  durationMs = 0;
}

@Controller()
class JobsController {
  constructor(@Inject(Work) private readonly work: Work) {}

  @StreamEvent('jobs.run')
  async run(@Payload() data: { job: number }, @Ctx() ctx: RedisStreamsContext) {
    this.work.started.push(data.job);
    if (this.work.durationMs > 0) await new Promise((resolve) => setTimeout(resolve, this.work.durationMs).unref());
    this.work.done.push({ job: data.job, deliveryCount: ctx.getDeliveryCount(), consumer: ctx.getConsumer() });
  }
}

const pendingCount = async (redis: RawRedis, stream: string, group: string) => Number((await redis.xpending(stream, group))[0]);

describe('reclaiming and shutdown (real Redis)', () => {
  const prefix = uniquePrefix('reclaim');
  const keys = testKeys(prefix);
  const stream = keys.stream('jobs.run');
  const apps: INestMicroservice[] = [];
  let redis: RawRedis;
  let client: RedisStreamsClient;

  beforeAll(() => {
    redis = rawRedis();
    client = new RedisStreamsClient(testConfig(prefix));
  });

  afterAll(async () => {
    await client.close();
    await Promise.all(apps.map((app) => app.close()));
    await cleanupPrefix(redis, prefix);
    redis.disconnect();
  });

  it('takes over the entries of a consumer that read them and died, once they are idle for claimIdleMs', async () => {
    await redis.xgroup('CREATE', stream, 'crash', '0', 'MKSTREAM');
    for (let job = 0; job < 20; job++) await lastValueFrom(client.emit('jobs.run', { job }));
    // A consumer reads all 20 and dies without acknowledging (from Redis' side, exactly what SIGKILL leaves).
    await redis.xreadgroup('GROUP', 'crash', 'dead-consumer', 'COUNT', 100, 'STREAMS', stream, '>');
    expect(await pendingCount(redis, stream, 'crash')).toBe(20);
    const started = Date.now();
    const { app, server } = await startConsumer(testConfig(prefix, { consumer: { group: 'crash', claimIdleMs: 1_000 } }), [JobsController], [Work]);
    apps.push(app);
    const work = app.get(Work);
    await waitFor(() => work.done.length === 20, { timeoutMs: 10_000, message: 'the 20 abandoned entries' });
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
    expect(work.done.every((d) => d.deliveryCount === 2)).toBe(true);
    expect(new Set(work.done.map((d) => d.job)).size).toBe(20);
    await waitFor(async () => (await pendingCount(redis, stream, 'crash')) === 0, { message: 'acks' });
    expect(server.getMetrics().reclaimed).toBe(20);
  });

  it('does not take work from a slow consumer that is still inside its handler', async () => {
    const slowConfig = testConfig(prefix, { consumer: { group: 'slow', claimIdleMs: 1_000, groupStartId: '$' } });
    const slow = await startConsumer(slowConfig, [JobsController], [Work]);
    const other = await startConsumer(slowConfig, [JobsController], [Work]);
    apps.push(slow.app, other.app);
    slow.app.get(Work).durationMs = 3_000;
    other.app.get(Work).durationMs = 3_000;
    await lastValueFrom(client.emit('jobs.run', { job: 100 }));
    // Handlers run 3x claimIdleMs; their claims are extended, so the job is never handled twice.
    const finished = () => [...slow.app.get(Work).done, ...other.app.get(Work).done].filter((d) => d.job === 100);
    await waitFor(() => finished().length >= 1, { timeoutMs: 10_000, message: 'the slow job' });
    // Give a would-be thief one more reclaim interval after the job's handler finished.
    const started = () => [...slow.app.get(Work).started, ...other.app.get(Work).started].filter((j) => j === 100);
    await expectNothingWithin(300, () => [started(), finished().length], { message: 'no thief to take the job' });
    expect(started()).toEqual([100]);
    expect(finished()).toEqual([expect.objectContaining({ deliveryCount: 1 })]);
  });

  it('close() lets in-flight handlers finish and acknowledges them', async () => {
    const { app } = await startConsumer(testConfig(prefix, { consumer: { group: 'graceful', shutdownTimeoutMs: 5_000, groupStartId: '$' } }), [JobsController], [Work]);
    const work = app.get(Work);
    work.durationMs = 500;
    for (let job = 200; job < 205; job++) await lastValueFrom(client.emit('jobs.run', { job }));
    await waitFor(() => work.started.filter((j) => j >= 200).length === 5, { message: 'handlers to start' });
    await app.close();
    expect(work.done.filter((d) => d.job >= 200)).toHaveLength(5);
    expect(await pendingCount(redis, stream, 'graceful')).toBe(0);
  });

  it('close() after shutdownTimeoutMs leaves unfinished entries pending for another consumer, which finishes them', async () => {
    const config = testConfig(prefix, { consumer: { group: 'abandon', shutdownTimeoutMs: 200, claimIdleMs: 1_000, groupStartId: '$' } });
    const first = await startConsumer(config, [JobsController], [Work]);
    first.app.get(Work).durationMs = 5_000;
    await lastValueFrom(client.emit('jobs.run', { job: 300 }));
    await waitFor(() => first.app.get(Work).started.includes(300), { message: 'the handler to start' });
    await first.app.close();
    expect(first.app.get(Work).done).toHaveLength(0);
    expect(await pendingCount(redis, stream, 'abandon')).toBeGreaterThanOrEqual(1);
    const second = await startConsumer(config, [JobsController], [Work]);
    apps.push(second.app);
    await waitFor(() => second.app.get(Work).done.some((d) => d.job === 300), { timeoutMs: 10_000, message: 'the other consumer' });
    await waitFor(async () => (await pendingCount(redis, stream, 'abandon')) === 0, { message: 'the ack' });
  });
});
