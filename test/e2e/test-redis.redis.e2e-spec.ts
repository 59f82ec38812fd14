/*
 * nestjs-redis-streams-enterprise/testing, the Redis side: startTestRedis() (reuse REDIS_URL, or spawn and stop a
 * throw-away redis-server), testConfig(), and key clean-up under a prefix, checked on raw Redis state.
 */
import { Redis } from 'ioredis';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Controller, type INestMicroservice } from '@nestjs/common';
import { Payload } from '@nestjs/microservices';
import { Test } from '@nestjs/testing';
import { InvalidOptionsError, RedisStreamsEnterpriseModule, RedisStreamsServer, StreamEvent } from 'nestjs-redis-streams-enterprise';
import {
  RedisStreamsTestHarness,
  TestRedisStartError,
  deleteKeysWithPrefix,
  startTestRedis,
  testConfig,
  testKeyPrefix,
} from 'nestjs-redis-streams-enterprise/testing';
import { keysMatching, redisUrl, uniquePrefix } from '../support/redis.js';

/** True while a process with this id exists. */
function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

describe('startTestRedis', () => {
  it('spawns a throw-away redis-server when no URL is given, and stop() kills it and waits for its exit', async () => {
    const redis = await startTestRedis({ env: {} });
    const pid = redis.pid!;
    expect(redis.isSpawned).toBe(true);
    expect(redis.url).toMatch(/^redis:\/\/127\.0\.0\.1:\d+$/);
    expect(redis.url).not.toBe(process.env.REDIS_URL);
    const connection = new Redis(redis.url, { maxRetriesPerRequest: 1 });
    try {
      expect(await connection.ping()).toBe('PONG');
      // No persistence: nothing written to disk, nothing to load on a restart.
      expect(await connection.config('GET', 'save')).toEqual(['save', '']);
      expect(await connection.config('GET', 'appendonly')).toEqual(['appendonly', 'no']);
      expect(await connection.config('GET', 'bind')).toEqual(['bind', '127.0.0.1']);
    } finally {
      connection.disconnect();
    }

    await redis.stop();

    expect(isRunning(pid)).toBe(false); // stop() resolved after the exit, not before
    await redis.stop(); // idempotent
  });

  it('uses REDIS_URL of the environment it is given (nothing spawned, stop() leaves it alone); `url` wins over it', async () => {
    const reused = await startTestRedis({ env: { REDIS_URL: redisUrl() } });
    expect(reused).toMatchObject({ url: redisUrl(), isSpawned: false, pid: undefined });
    await reused.stop();
    const connection = new Redis(redisUrl(), { maxRetriesPerRequest: 1 });
    try {
      expect(await connection.ping()).toBe('PONG');
    } finally {
      connection.disconnect();
    }

    const given = await startTestRedis({ url: 'redis://127.0.0.1:1', env: { REDIS_URL: redisUrl() } });
    expect(given).toMatchObject({ url: 'redis://127.0.0.1:1', isSpawned: false });
  });

  it('says how to fix a missing redis-server', async () => {
    const error = await startTestRedis({ env: {}, redisServerPath: '/nonexistent/redis-server' }).catch((e: unknown) => e);

    expect(error).toBeInstanceOf(TestRedisStartError);
    expect(error).toMatchObject({ code: 'TEST_REDIS_START_FAILED', reason: 'not-installed' });
    expect((error as Error).message).toMatch(/\/nonexistent\/redis-server was not found on PATH; install redis-server \(Debian\/Ubuntu: apt-get install redis-server/);
    expect((error as Error).message).toMatch(/REDIS_URL/);
  });

  describe('a server that does not start', () => {
    let dir: string;

    beforeAll(async () => {
      dir = await mkdtemp(join(tmpdir(), 'rse-fake-redis-'));
    });

    afterAll(async () => {
      await rm(dir, { recursive: true, force: true });
    });

    async function script(name: string, body: string): Promise<string> {
      const path = join(dir, name);
      await writeFile(path, `#!/bin/sh\n${body}\n`);
      await chmod(path, 0o755);
      return path;
    }

    it('exits at start: the error quotes its output', async () => {
      const path = await script('exits.sh', 'echo "FATAL CONFIG FILE ERROR"; exit 1');
      const error = await startTestRedis({ env: {}, redisServerPath: path }).catch((e: unknown) => e);

      expect(error).toMatchObject({ code: 'TEST_REDIS_START_FAILED', reason: 'exited' });
      expect((error as Error).message).toMatch(/exited at start \(code 1\) on port \d+: FATAL CONFIG FILE ERROR/);
    });

    it('never gets ready: killed after startTimeoutMs', async () => {
      const pidFile = join(dir, 'hangs.pid');
      const path = await script('hangs.sh', `echo $$ > ${pidFile}; exec sleep 30`);
      const started = Date.now();
      const error = await startTestRedis({ env: {}, redisServerPath: path, startTimeoutMs: 300 }).catch((e: unknown) => e);

      expect(error).toMatchObject({ code: 'TEST_REDIS_START_FAILED', reason: 'timeout' });
      expect(Date.now() - started).toBeLessThan(3_000);
      expect(isRunning(Number(await readFile(pidFile, 'utf8')))).toBe(false);
    });
  });
});

describe('testConfig and testKeyPrefix', () => {
  it('points the configuration at the test Redis with a prefix of its own, keeping the rest', () => {
    const config = testConfig(
      { url: 'redis://127.0.0.1:7001' },
      {
        connection: { connectionName: 'billing', cluster: { nodes: [{ host: '10.0.0.1', port: 7000 }] } },
        streams: { keyPrefix: 'prod', maxLen: 1_000 },
        consumer: { group: 'billing' },
      },
    );

    expect(config).toEqual({
      connection: { connectionName: 'billing', url: 'redis://127.0.0.1:7001' },
      streams: { keyPrefix: expect.stringMatching(/^test:[0-9a-f]{12}$/), maxLen: 1_000 },
      consumer: { group: 'billing' },
    });
    expect(testConfig('redis://h:1').streams?.keyPrefix).not.toBe(testConfig('redis://h:1').streams?.keyPrefix);
    expect(testConfig('redis://h:1', {}, { keyPrefix: 'mine' }).streams?.keyPrefix).toBe('mine');
  });

  it('labels prefixes and refuses labels a key prefix cannot hold', () => {
    expect(testKeyPrefix('orders')).toMatch(/^orders:[0-9a-f]{12}$/);
    expect(() => testKeyPrefix('a b')).toThrow(InvalidOptionsError);
  });
});

describe('key clean-up under a prefix', () => {
  const prefix = uniquePrefix('cleanup');
  let redis: Redis;

  beforeAll(() => {
    redis = new Redis(redisUrl(), { maxRetriesPerRequest: 1 });
  });

  afterAll(async () => {
    await deleteKeysWithPrefix(redis, prefix);
    await deleteKeysWithPrefix(redis, `${prefix}-other`);
    await redis.unlink(prefix, `${prefix}*x:1`, `${prefix}Ax:1`);
    redis.disconnect();
  });

  it('deletes every key under "<prefix>:" and nothing else (SCAN + UNLINK, more keys than one SCAN page)', async () => {
    const mine = Array.from({ length: 2_500 }, (_, i) => `${prefix}:{k${i % 50}}:${i}`);
    for (let i = 0; i < mine.length; i += 500) await redis.mset(...mine.slice(i, i + 500).flatMap((key) => [key, '1']));
    await redis.xadd(`${prefix}:{s}`, '*', 'f', 'v');
    await redis.set(`${prefix}-other:kept`, '1');
    await redis.set(prefix, 'no colon: not under the prefix');

    expect(await deleteKeysWithPrefix(redis, prefix)).toBe(mine.length + 1);

    expect(await keysMatching(redis, `${prefix}:*`)).toEqual([]);
    expect(await redis.exists(`${prefix}-other:kept`, prefix)).toBe(2);
  });

  it('matches the prefix literally (glob characters escaped), and refuses an empty prefix', async () => {
    await redis.set(`${prefix}*x:1`, '1');
    await redis.set(`${prefix}Ax:1`, '1');

    expect(await deleteKeysWithPrefix(redis, `${prefix}*x`)).toBe(1);
    expect(await redis.exists(`${prefix}Ax:1`)).toBe(1);
    await expect(deleteKeysWithPrefix(redis, '')).rejects.toThrow(InvalidOptionsError);
  });

  it('waitUntilSettled tells apart two partitions holding the same entry id (by messageId or stream)', async () => {
    @Controller()
    class SameIdController {
      @StreamEvent('same.id')
      handle(@Payload() data: { fail: boolean }) {
        if (data.fail) throw new Error('fails');
      }
    }
    const config = testConfig(redisUrl(), {
      retry: { attempts: 1 },
      consumer: { group: 'same', blockMs: 200 },
      partitioning: { enabled: true, partitionCount: 2 },
    });
    const moduleRef = await Test.createTestingModule({ imports: [RedisStreamsEnterpriseModule.forRoot(config)], controllers: [SameIdController] }).compile();
    const app: INestMicroservice = moduleRef.createNestMicroservice({ strategy: moduleRef.get(RedisStreamsServer), logger: false });
    await app.listen();
    const harness = RedisStreamsTestHarness.fromConfig(config, { timeoutMs: 5_000 });
    try {
      await harness.emitAndWait('same.id', { fail: false }); // writes the topic's partition layout
      // Entry ids are unique per stream only: a foreign producer writes one id into both partitions.
      const id = `${Date.now() + 60_000}-0`;
      const [p0, p1] = [0, 1].map((n) => `${harness.keyPrefix}:{same.id#${n}}`);
      await redis.xadd(p0, id, 'pattern', 'same.id', 'id', 'm-fails', 'data', '{"fail":true}');
      await redis.xadd(p1, id, 'pattern', 'same.id', 'id', 'm-succeeds', 'data', '{"fail":false}');

      await expect(harness.waitUntilSettled('same.id', id, { messageId: 'm-fails' })).resolves.toMatchObject({
        outcome: 'dead-lettered',
        stream: p0,
        deadLetter: { messageId: 'm-fails', reason: 'max-deliveries' },
      });
      await expect(harness.waitUntilSettled('same.id', id, { messageId: 'm-succeeds' })).resolves.toMatchObject({ outcome: 'handled', stream: p1 });
      await expect(harness.waitUntilSettled('same.id', id, { stream: p1 })).resolves.toMatchObject({ outcome: 'handled', stream: p1 });
      await expect(harness.waitUntilSettled('same.id', id, { timeoutMs: 100 })).rejects.toThrow(/2 partitions hold an entry .*pass `stream` or `messageId`/);
    } finally {
      await app.close();
      await harness.cleanup();
      await harness.close();
    }
  });

  it('harness.cleanup() removes everything an app wrote under its prefix (streams, dead letters, leases)', async () => {
    @Controller()
    class FailingController {
      @StreamEvent('cleanup.events')
      handle(@Payload() data: { fail: boolean }) {
        if (data.fail) throw new Error('fails');
      }
    }
    const config = testConfig(redisUrl(), { retry: { attempts: 1 }, consumer: { group: 'cleanup' } });
    const moduleRef = await Test.createTestingModule({ imports: [RedisStreamsEnterpriseModule.forRoot(config)], controllers: [FailingController] }).compile();
    const app: INestMicroservice = moduleRef.createNestMicroservice({ strategy: moduleRef.get(RedisStreamsServer), logger: false });
    await app.listen();
    const harness = RedisStreamsTestHarness.fromConfig(config);
    try {
      await harness.emitAndWait('cleanup.events', { fail: false });
      await harness.emitAndWait('cleanup.events', { fail: true });
      await app.close();
      const written = await keysMatching(redis, `${harness.keyPrefix}:*`);
      expect(written).toEqual(expect.arrayContaining([`${harness.keyPrefix}:{cleanup.events}`, `${harness.keyPrefix}:{cleanup.events}:dlq`]));

      expect(await harness.cleanup()).toBe(written.length);

      expect(await keysMatching(redis, `${harness.keyPrefix}:*`)).toEqual([]);
    } finally {
      await app.close();
      await harness.close();
    }
  });
});
