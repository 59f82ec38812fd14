import { Redis } from 'ioredis';
import { lastValueFrom } from 'rxjs';
import { RedisStreamsClient, RedisUnavailableError, ReplicationTimeoutError } from 'nestjs-redis-streams-enterprise';
import { testConfig } from '../support/nest-apps.js';
import { RedisProcess } from '../support/redis-process.mjs';
import { uniquePrefix } from '../support/redis.js';
import { testKeys } from '../support/keys.js';
import { waitFor } from '../support/wait-for.js';

describe('publishing through outages (own redis-server processes)', () => {
  it('with client.offlineQueueSize, emit waits for the reconnect (bounded) instead of failing, and nothing is lost', async () => {
    const server = await RedisProcess.start({ appendonly: true });
    const prefix = uniquePrefix('offline');
    const keys = testKeys(prefix);
    const client = new RedisStreamsClient(
      testConfig(prefix, { connection: { url: server.url }, client: { offlineQueueSize: 3, offlineTimeoutMs: 15_000 } }),
    );
    const check = new Redis(server.url, { lazyConnect: true, maxRetriesPerRequest: 1, disconnectTimeout: 100 });
    check.on('error', () => undefined);
    try {
      await lastValueFrom(client.emit('outage.event', { n: 0 }));
      await server.kill();
      await waitFor(() => client.unwrap<Redis>().status !== 'ready', { message: 'the client to notice' });
      const waiting = [1, 2, 3].map((n) => lastValueFrom(client.emit('outage.event', { n })));
      // The queue holds three: the fourth fails at once, without waiting.
      const started = Date.now();
      await expect(lastValueFrom(client.emit('outage.event', { n: 4 }))).rejects.toThrow(RedisUnavailableError);
      expect(Date.now() - started).toBeLessThan(1_000);
      await server.restart();
      const ids = await Promise.all(waiting);
      expect(ids).toHaveLength(3);
      await check.connect();
      const entries = await check.xrange(keys.stream('outage.event'), '-', '+');
      expect(entries.map(([, fields]) => JSON.parse(fields[fields.indexOf('data') + 1]).n).sort()).toEqual([0, 1, 2, 3]);
    } finally {
      check.disconnect();
      await client.close();
      await server.stop();
    }
  });

  it('with client.offlineQueueSize 0 (the default), emit fails at once while Redis is down', async () => {
    const server = await RedisProcess.start();
    const client = new RedisStreamsClient(testConfig(uniquePrefix('failfast'), { connection: { url: server.url } }));
    try {
      await lastValueFrom(client.emit('outage.event', { n: 0 }));
      await server.kill();
      await waitFor(() => client.unwrap<Redis>().status !== 'ready', { message: 'the client to notice' });
      const started = Date.now();
      await expect(lastValueFrom(client.emit('outage.event', { n: 1 }))).rejects.toThrow(/Redis is unreachable/);
      expect(Date.now() - started).toBeLessThan(1_000);
    } finally {
      await client.close();
      await server.stop();
    }
  });

  it('with connection.waitReplicas, emit resolves once a replica has the entry, and fails when none confirms in time', async () => {
    const primary = await RedisProcess.start();
    const replica = await RedisProcess.start({ args: ['--replicaof', '127.0.0.1', String(primary.port)] });
    const prefix = uniquePrefix('wait');
    const keys = testKeys(prefix);
    const client = new RedisStreamsClient(
      testConfig(prefix, { connection: { url: primary.url, waitReplicas: 1, waitTimeoutMs: 500 } }),
    );
    const onReplica = new Redis(replica.url, { maxRetriesPerRequest: 1, disconnectTimeout: 100 });
    onReplica.on('error', () => undefined);
    try {
      await waitFor(async () => /master_link_status:up/.test(await onReplica.info('replication')), { message: 'replication to start' });
      const id = await lastValueFrom(client.emit('replicated.event', { n: 1 }));
      // WAIT returned only after the replica acknowledged it, so the replica already has it.
      expect((await onReplica.xrange(keys.stream('replicated.event'), id, id)).length).toBe(1);
      await replica.kill();
      const error = await lastValueFrom(client.emit('replicated.event', { n: 2 })).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ReplicationTimeoutError);
      expect(error).toMatchObject({ replicasConfirmed: 0, replicasRequired: 1 });
      expect((error as ReplicationTimeoutError).entryId).toMatch(/^\d+-\d+$/);
    } finally {
      onReplica.disconnect();
      await client.close();
      await replica.stop();
      await primary.stop();
    }
  });
});
