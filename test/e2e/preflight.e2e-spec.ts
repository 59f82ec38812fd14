/**
 * Redis preflight (issue 15): on listen() the server reads INFO (and CONFIG GET as the default user) of its own
 * throw-away redis-server and warns once, in the log and in getStatus().preflight, about an evicting maxmemory-policy, AOF off,
 * appendfsync no, and waitReplicas above the connected replicas; when the ACL denies CONFIG it says it could not
 * verify, and the server starts anyway.
 */
import { Controller, Logger, type INestMicroservice } from '@nestjs/common';
import { Redis } from 'ioredis';
import { StreamEvent, type RedisStreamsServer } from 'nestjs-redis-streams-enterprise';
import { startConsumer, testConfig } from '../support/nest-apps.js';
import { RedisProcess } from '../support/redis-process.mjs';
import { uniquePrefix } from '../support/redis.js';

@Controller()
class PreflightController {
  @StreamEvent('preflight.any')
  any() {}
}

/** Warnings the library logged (every Logger instance). */
const warnLines: string[] = [];
const originalWarn = Logger.prototype.warn;

beforeAll(() => {
  Logger.prototype.warn = function (this: Logger, message: unknown, ...rest: unknown[]) {
    warnLines.push(String(message));
    return (originalWarn as (...args: unknown[]) => void).call(this, message, ...rest);
  };
});

afterAll(() => {
  Logger.prototype.warn = originalWarn;
});

describe('Redis preflight at start (issue 15)', () => {
  const redises: RedisProcess[] = [];
  const apps: INestMicroservice[] = [];

  afterAll(async () => {
    await Promise.all(apps.map((app) => app.close()));
    await Promise.all(redises.map((r) => r.stop()));
  }, 30_000);

  async function consumerOn(args: { appendonly?: boolean; args?: string[] }, waitReplicas = 0, setup?: (admin: Redis) => Promise<unknown>): Promise<RedisStreamsServer> {
    const redis = await RedisProcess.start(args);
    redises.push(redis);
    if (setup) {
      const admin = new Redis(redis.url, { maxRetriesPerRequest: 1 });
      await setup(admin);
      admin.disconnect();
    }
    warnLines.length = 0;
    const started = await startConsumer(testConfig(uniquePrefix('preflight'), { connection: { url: redis.url, waitReplicas } }), [PreflightController]);
    apps.push(started.app);
    return started.server;
  }

  it('warns once about an evicting maxmemory-policy, AOF off and waitReplicas above the connected replicas', async () => {
    const server = await consumerOn({ args: ['--maxmemory-policy', 'allkeys-lru'] }, 1);
    const status = await server.getStatus();
    expect(status.preflight).toMatchObject({ maxmemoryPolicy: 'allkeys-lru', aofEnabled: false, connectedReplicas: 0, unverified: [] });
    const expected = [
      expect.stringMatching(/^maxmemory-policy is allkeys-lru: at maxmemory Redis evicts keys, so streams, consumer groups/),
      expect.stringMatching(/^AOF is off \(appendonly no\)/),
      expect.stringMatching(/^connection.waitReplicas is 1 but the server has 0 connected replicas/),
    ];
    expect(status.preflight?.warnings).toEqual(expected);
    // About the server, not this consumer's streams: not mixed into the status's stream warnings.
    expect(status.warnings).toEqual([]);
    // Still healthy: these are risks, not failures.
    expect(status.healthy).toBe(true);
    await server.getStatus();
    const logged = warnLines.filter((line) => line.startsWith('Redis server check:'));
    expect(logged).toEqual([
      expect.stringMatching(/^Redis server check: maxmemory-policy is allkeys-lru/),
      expect.stringMatching(/^Redis server check: AOF is off/),
      expect.stringMatching(/^Redis server check: connection.waitReplicas is 1/),
    ]);
  }, 30_000);

  it('warns about appendfsync no with AOF on, read with CONFIG GET', async () => {
    const server = await consumerOn({ appendonly: true, args: ['--appendfsync', 'no'] });
    const status = await server.getStatus();
    expect(status.preflight).toMatchObject({ maxmemoryPolicy: 'noeviction', aofEnabled: true, appendfsync: 'no', unverified: [] });
    expect(status.preflight?.warnings).toEqual([expect.stringMatching(/^appendfsync is no: the operating system decides when the AOF reaches disk/)]);
  }, 30_000);

  it('says it could not verify appendfsync when the ACL denies CONFIG, and starts anyway', async () => {
    const server = await consumerOn({ appendonly: true }, 0, (admin) => admin.call('ACL', 'SETUSER', 'default', '-config'));
    const status = await server.getStatus();
    expect(status.healthy).toBe(true);
    expect(status.preflight).toMatchObject({ aofEnabled: true, appendfsync: null, warnings: [] });
    expect(status.preflight?.unverified).toEqual([expect.stringMatching(/^CONFIG GET appendfsync .*: .*NOPERM/)]);
    // Not a permission problem of the running server: CONFIG is not something it needs.
    expect(status.permissionProblems).toEqual([]);
    expect(warnLines.filter((line) => line.startsWith('Redis server check: could not verify'))).toHaveLength(1);
  }, 30_000);

  it('has nothing to say about a well-configured server (noeviction, AOF everysec)', async () => {
    const server = await consumerOn({ args: ['--appendonly', 'yes', '--appendfsync', 'everysec'] });
    const status = await server.getStatus();
    expect(status.preflight).toMatchObject({ maxmemoryPolicy: 'noeviction', aofEnabled: true, appendfsync: 'everysec', warnings: [], unverified: [] });
    expect(warnLines.filter((line) => line.startsWith('Redis server check:'))).toEqual([]);
  }, 30_000);
});
