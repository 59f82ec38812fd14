import { Controller, Inject, Injectable } from '@nestjs/common';
import { Ctx, Payload } from '@nestjs/microservices';
import type { INestMicroservice } from '@nestjs/common';
import { lastValueFrom } from 'rxjs';
import { RedisStreamsClient, RedisStreamsContext, StreamEvent, type RedisStreamsEnterpriseConfig } from 'nestjs-redis-streams-enterprise';
import { startConsumer, testConfig } from '../support/nest-apps.js';
import { ConsumerProcess } from '../support/process-consumers.js';
import { readHandlings } from '../support/process-ledger.js';
import { cleanupPrefix, rawRedis, uniquePrefix, type RawRedis } from '../support/redis.js';
import { testKeys } from '../support/keys.js';
import { range, reckon } from '../support/ledger.js';
import { waitFor } from '../support/wait-for.js';

/**
 * consumer.consumerName is a presence lease: two live instances with one name would share one pending list (the
 * second takes the first's in-flight entries as its own on start), so the second is refused; a name whose holder
 * closed is free at once, one whose holder was killed once its lease expires (consumer.nameLeaseMs).
 */

/** Every app gets its own recorder through DI: two apps with one consumer name still record apart. */
@Injectable()
class Work {
  readonly handled: { n: number; deliveryCount: number }[] = [];
  handlerMs = 30;
}

@Controller()
class JobsController {
  constructor(@Inject(Work) private readonly work: Work) {}

  @StreamEvent('names.job')
  async run(@Payload() data: { n: number }, @Ctx() ctx: RedisStreamsContext) {
    await new Promise((resolve) => setTimeout(resolve, this.work.handlerMs).unref());
    this.work.handled.push({ n: data.n, deliveryCount: ctx.getDeliveryCount() });
  }
}

async function emitRange(client: RedisStreamsClient, from: number, to: number): Promise<void> {
  const sends: Promise<unknown>[] = [];
  for (let n = from; n < to; n++) sends.push(lastValueFrom(client.emit('names.job', { n })));
  await Promise.all(sends);
}

/** How often each message 0..count-1 was handled, over all recorders; lost and duplicated ones. */
function ledger(handled: readonly { n: number }[], count: number) {
  const { lost, duplicated } = reckon(
    handled.map((h) => h.n),
    range(0, count),
  );
  return { lost, duplicated };
}

describe('consumer names are leased: one live instance per name (real Redis)', () => {
  const NAME_LEASE_MS = 2_000;
  const apps: INestMicroservice[] = [];
  const children: ConsumerProcess[] = [];
  const clients: RedisStreamsClient[] = [];
  const prefixes: string[] = [];
  let redis: RawRedis;

  /** A fresh prefix (so a test reads none of another's entries), its client and its consumer configuration. */
  function scenario(name: string) {
    const prefix = uniquePrefix(name);
    prefixes.push(prefix);
    const client = new RedisStreamsClient(testConfig(prefix));
    clients.push(client);
    const config = (consumerName: string, extra: RedisStreamsEnterpriseConfig['consumer'] = {}) =>
      testConfig(prefix, { consumer: { group: 'names', consumerName, nameLeaseMs: NAME_LEASE_MS, concurrency: 8, batchSize: 8, ...extra } });
    return { prefix, client, config };
  }

  /** Starts an app; a refused start resolves to its error. */
  async function tryStart(cfg: RedisStreamsEnterpriseConfig) {
    try {
      const started = await startConsumer(cfg, [JobsController], [Work]);
      apps.push(started.app);
      return started;
    } catch (error) {
      return error as Error & { code?: string };
    }
  }

  beforeAll(() => {
    redis = rawRedis();
  });

  afterAll(async () => {
    await Promise.all(children.map((c) => c.kill()));
    await Promise.all(clients.map((c) => c.close()));
    await Promise.all(apps.map((app) => app.close()));
    for (const prefix of prefixes) await cleanupPrefix(redis, prefix);
    redis.disconnect();
  });

  it('a second live instance with the same name is refused with ConsumerNameInUseError; the first keeps processing, nothing twice', async () => {
    const COUNT = 400;
    const { client, config } = scenario('names-twin');
    const a = await startConsumer(config('twin'), [JobsController], [Work]);
    apps.push(a.app);
    const workA = a.app.get(Work);
    const emitted = emitRange(client, 0, COUNT);
    await waitFor(() => workA.handled.length >= 40, { message: 'A to be mid-run' });

    const b = await tryStart(config('twin'));
    const bWork = b instanceof Error ? undefined : b.app.get(Work);
    const refusal = b instanceof Error ? { name: b.name, code: b.code } : 'started';
    expect(refusal).toEqual({ name: 'ConsumerNameInUseError', code: 'CONSUMER_NAME_IN_USE' });
    expect((b as Error).message).toContain('"twin"');
    expect((b as Error).message).toContain('"names"');
    expect((b as Error).message).toContain('consumer.consumerName');

    await emitted;
    await waitFor(() => workA.handled.length + (bWork?.handled.length ?? 0) >= COUNT, { timeoutMs: 20_000, message: `all ${COUNT} messages` });
    expect(ledger([...workA.handled, ...(bWork?.handled ?? [])], COUNT)).toEqual({ lost: [], duplicated: [] });
    expect(workA.handled.every((h) => h.deliveryCount === 1)).toBe(true);
    await expect(a.server.getStatus()).resolves.toMatchObject({ healthy: true });
  }, 40_000);

  it('once the holder closed, an instance with the same name starts at once and takes over', async () => {
    const { client, config } = scenario('names-close');
    const first = await startConsumer(config('stable-0'), [JobsController], [Work]);
    await emitRange(client, 0, 20);
    await waitFor(() => first.app.get(Work).handled.length === 20, { message: 'the first 20' });
    await first.app.close();

    const second = await tryStart(config('stable-0'));
    expect(second).not.toBeInstanceOf(Error);
    const work = (second as Awaited<ReturnType<typeof startConsumer>>).app.get(Work);
    await emitRange(client, 20, 40);
    await waitFor(() => work.handled.length === 20, { message: 'the next 20' });
    expect(ledger([...first.app.get(Work).handled, ...work.handled], 40)).toEqual({ lost: [], duplicated: [] });
  });

  it('after the holder was SIGKILLed, an instance with the same name starts once the lease expired and takes back its entries', async () => {
    const { prefix, client, config } = scenario('names-kill');
    const victim = await ConsumerProcess.start({
      PREFIX: prefix,
      GROUP: 'names',
      PATTERN: 'names.job',
      CONSUMER_NAME: 'stable-1',
      HANDLER_MS: '5000',
      CONCURRENCY: '4',
      CLAIM_IDLE_MS: '30000',
      NAME_LEASE_MS: String(NAME_LEASE_MS),
    });
    children.push(victim);
    await emitRange(client, 1_000, 1_010);
    const stream = testKeys(prefix).stream('names.job');
    await waitFor(async () => Number((await redis.xpending(stream, 'names'))[0]) === 4, { message: 'the victim to hold 4 entries' });
    await victim.kill();

    // Same stable name (a StatefulSet pod restarted): waits for the dead instance's lease, then starts. claimIdleMs is
    // long, so only taking back its own entries (not reclaiming idle ones) can finish the 4 the victim held.
    const restarted = await tryStart(config('stable-1', { claimIdleMs: 30_000 }));
    expect(restarted).not.toBeInstanceOf(Error);
    const work = (restarted as Awaited<ReturnType<typeof startConsumer>>).app.get(Work);
    await waitFor(() => work.handled.length === 10, { timeoutMs: 10_000, message: 'all 10 messages' });
    const handled = work.handled.map((h) => h.n - 1_000);
    expect(ledger(work.handled.map((h) => ({ n: h.n - 1_000 })), 10)).toEqual({ lost: [], duplicated: [] });
    expect(handled).toHaveLength(10);
    expect(work.handled.filter((h) => h.deliveryCount === 2)).toHaveLength(4);
    expect(await readHandlings(redis, prefix)).toEqual([]);
  }, 40_000);
});
