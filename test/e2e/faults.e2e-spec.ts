import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Controller, Inject, Injectable, type INestMicroservice } from '@nestjs/common';
import { Payload } from '@nestjs/microservices';
import { Redis } from 'ioredis';
import { lastValueFrom } from 'rxjs';
import { RedisStreamsClient, StreamEvent } from 'nestjs-redis-streams-enterprise';
import { startConsumer, testConfig } from '../support/nest-apps.js';
import { RedisProcess } from '../support/redis-process.mjs';
import { cleanupPrefix, rawRedis, uniquePrefix } from '../support/redis.js';
import { testKeys } from '../support/keys.js';
import { processedKey, readHandlings, tally } from '../support/process-ledger.js';
import { waitFor } from '../support/wait-for.js';

const consumerScript = fileURLToPath(new URL('../support/consumer-process.mjs', import.meta.url));

function startConsumerProcess(env: Record<string, string>): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    const child = fork(consumerScript, [], { env: { ...process.env, ...env }, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    child.once('message', () => resolve(child));
    child.once('exit', (code) => reject(new Error(`consumer process exited early with ${code}`)));
  });
}

function killed(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill('SIGKILL');
  });
}

describe('faults (real Redis processes)', () => {
  it('a consumer killed with SIGKILL mid-batch loses nothing: another consumer takes over its pending entries', async () => {
    const prefix = uniquePrefix('sigkill');
    const redis = rawRedis();
    const keys = testKeys(prefix);
    const client = new RedisStreamsClient(testConfig(prefix));
    const children: ChildProcess[] = [];
    try {
      const env = { REDIS_URL: process.env.REDIS_URL as string, PREFIX: prefix, GROUP: 'workers', PATTERN: 'jobs.sigkill', CONCURRENCY: '8', CLAIM_IDLE_MS: '1000' };
      const victim = await startConsumerProcess({ ...env, HANDLER_MS: '20' });
      children.push(victim);
      const count = 300;
      for (let n = 0; n < count; n++) await lastValueFrom(client.emit('jobs.sigkill', { n }));
      await waitFor(async () => (await redis.llen(processedKey(prefix))) >= 60, { message: 'the victim to make progress' });
      await killed(victim);
      const pendingAtKill = Number((await redis.xpending(keys.stream('jobs.sigkill'), 'workers'))[0]);
      expect(pendingAtKill).toBeGreaterThan(0);
      const survivor = await startConsumerProcess({ ...env, HANDLER_MS: '0' });
      children.push(survivor);
      await waitFor(async () => tally(await readHandlings(redis, prefix), count).lost.length === 0, {
        timeoutMs: 20_000,
        message: 'every message to be handled',
      });
      await waitFor(async () => Number((await redis.xpending(keys.stream('jobs.sigkill'), 'workers'))[0]) === 0, { message: 'acks' });
      const { lost, duplicated, unknown } = tally(await readHandlings(redis, prefix), count);
      expect(lost).toEqual([]);
      expect(unknown).toEqual([]);
      // At-least-once: only entries that were inside the victim's handlers (at most its concurrency) can repeat.
      expect(duplicated.size).toBeLessThanOrEqual(8);
    } finally {
      await Promise.all(children.map(killed));
      await client.close();
      await cleanupPrefix(redis, prefix);
      redis.disconnect();
    }
  });

  describe('Redis restart', () => {
    @Injectable()
    class Seen {
      readonly ns = new Set<number>();
    }

    @Controller()
    class RestartController {
      constructor(@Inject(Seen) private readonly seen: Seen) {}

      @StreamEvent('jobs.restart')
      handle(@Payload() data: { n: number }) {
        this.seen.ns.add(data.n);
      }
    }

    let redisServer: RedisProcess;
    let app: INestMicroservice | undefined;
    let client: RedisStreamsClient | undefined;

    beforeAll(async () => {
      redisServer = await RedisProcess.start({ appendonly: true });
    });

    afterAll(async () => {
      await client?.close();
      await app?.close();
      await redisServer.stop();
    });

    it('after Redis is killed and restarted, server and client reconnect by themselves and nothing acknowledged is lost', async () => {
      const prefix = uniquePrefix('restart');
      const config = testConfig(prefix, { connection: { url: redisServer.url } });
      const consumer = await startConsumer(config, [RestartController], [Seen]);
      app = consumer.app;
      client = new RedisStreamsClient(config);
      const seen = app.get(Seen).ns;
      for (let n = 0; n < 100; n++) await lastValueFrom(client.emit('jobs.restart', { n }));
      await waitFor(() => seen.size === 100, { message: 'the first 100' });

      await redisServer.kill();
      // While Redis is down, emit fails at once instead of buffering in memory.
      await expect(lastValueFrom(client.emit('jobs.restart', { n: -1 }))).rejects.toThrow();
      await redisServer.restart();

      // The client reconnects by itself; emit succeeds again once it has.
      let n = 100;
      await waitFor(async () => {
        try {
          await lastValueFrom(client!.emit('jobs.restart', { n }));
          n++;
          return true;
        } catch {
          return false; // still reconnecting
        }
      }, { timeoutMs: 15_000, message: 'the client to reconnect' });
      for (; n < 200; n++) await lastValueFrom(client.emit('jobs.restart', { n }));
      await waitFor(() => seen.size === 200, { timeoutMs: 15_000, message: 'the consumer to resume and handle all 200' });
      const check = new Redis(redisServer.url);
      try {
        await waitFor(async () => Number((await check.xpending(testKeys(prefix).stream('jobs.restart'), 'svc'))[0]) === 0, { message: 'acks after restart' });
      } finally {
        check.disconnect();
      }
      expect((await consumer.server.getStatus()).healthy).toBe(true);
    });
  });
});
