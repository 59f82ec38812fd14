import { Controller, Inject } from '@nestjs/common';
import type { INestMicroservice } from '@nestjs/common';
import { Ctx, Payload } from '@nestjs/microservices';
import { Redis } from 'ioredis';
import { lastValueFrom } from 'rxjs';
import { RedisStreamsClient, RedisStreamsContext, StreamEvent, type RedisStreamsEnterpriseConfig } from 'nestjs-redis-streams-enterprise';
import { testKeys } from '../support/keys.js';
import { startConsumer } from '../support/nest-apps.js';
import { RedisProcess } from '../support/redis-process.mjs';
import { TcpProxy } from '../support/tcp-proxy.js';
import { waitFor } from '../support/wait-for.js';

const FAULT = Symbol('FAULT');
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Kills Redis (AOF on) once, while the handler of message 1 runs, and starts it again 1.5 s later. */
class Fault {
  done?: Promise<void>;
  constructor(readonly redis: RedisProcess) {}
  once(): void {
    this.done ??= (async () => {
      await this.redis.kill();
      await sleep(1_500);
      await this.redis.restart();
    })();
  }
}

@Controller()
class JobsController {
  constructor(@Inject(FAULT) private readonly fault: Fault) {}

  @StreamEvent('restart.jobs')
  async handle(@Payload() data: { key: string; n: number }, @Ctx() ctx: RedisStreamsContext) {
    if (data.n === 1 && !this.fault.done) {
      this.fault.once();
      await sleep(300);
    }
    ctx.transaction().call('RPUSH', `${ctx.getStream()}:effects`, String(data.n));
  }
}

/**
 * A Redis restart while an ordered, exactly-once partition is being consumed (found by the soak, seed 5): a read
 * issued while the reading connection was down waited in ioredis's offline queue, was sent after the reconnect —
 * after the loop had given up on it — and the entry it delivered sat in the consumer's pending list, never handled,
 * while the key's later messages were.
 */
describe('Redis restarted during an ordered, exactly-once run (real Redis, AOF)', () => {
  let redis: RedisProcess;
  let proxy: TcpProxy;
  let app: INestMicroservice | undefined;
  let producer: RedisStreamsClient | undefined;

  beforeAll(async () => {
    redis = await RedisProcess.start({ appendonly: true });
    proxy = await TcpProxy.start('127.0.0.1', redis.port);
  });

  afterAll(async () => {
    await app?.close();
    await producer?.close();
    await proxy.close();
    await redis.stop();
  });

  it("every message of the key is committed once, in order, and nothing is left pending", async () => {
    const base: RedisStreamsEnterpriseConfig = {
      streams: { keyPrefix: 'restart' },
      consumer: { group: 'g', blockMs: 100, claimIdleMs: 1_000, reclaimIntervalMs: 100 },
      retry: { attempts: 5, backoff: { type: 'fixed', delayMs: 100, maxDelayMs: 100, jitter: 0 } },
      ordering: { enabled: true, strategy: 'partition', partitionKey: 'key' },
      partitioning: { enabled: true, partitionCount: 1, partitionKey: 'key', sessionTimeoutMs: 10_000 },
      exactlyOnce: { enabled: true },
    };
    ({ app } = await startConsumer({ ...base, connection: { url: proxy.url, blockingWatchdogMs: 1_000 } }, [JobsController], [
      { provide: FAULT, useValue: new Fault(redis) },
    ]));
    producer = new RedisStreamsClient({ ...base, connection: { url: redis.url } });
    const N = 6;
    for (let n = 0; n < N; n++) {
      // While Redis restarts an emit certainly fails (RedisUnavailableError) or may have been stored (AmbiguousWriteError,
      // then the consumer's exactly-once record keeps it from being applied twice): send again until one resolves.
      for (;;) {
        try {
          await lastValueFrom(producer.emit('restart.jobs', { key: 'k', n }));
          break;
        } catch {
          await sleep(200);
        }
      }
      await sleep(150);
    }
    const keys = testKeys('restart');
    const partition = keys.partition('restart.jobs', 0);
    const raw = new Redis(redis.port, '127.0.0.1');
    try {
      let effects: string[] = [];
      await waitFor(async () => (effects = await raw.lrange(`${partition}:effects`, 0, -1)).length >= N, { timeoutMs: 30_000, intervalMs: 200 }).catch(() => undefined);
      expect(effects).toEqual(Array.from({ length: N }, (_, n) => String(n)));
      await waitFor(async () => Number(((await raw.xpending(partition, 'g')) as [number])[0]) === 0, { timeoutMs: 10_000, message: 'nothing pending' });
    } finally {
      raw.disconnect();
    }
  }, 60_000);
});
