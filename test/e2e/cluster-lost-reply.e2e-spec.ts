import { Cluster, Redis } from 'ioredis';
import { lastValueFrom } from 'rxjs';
import { AmbiguousWriteError, RedisStreamsClient } from 'nestjs-redis-streams-enterprise';
import { testConfig } from '../support/nest-apps.js';
import { RedisCluster } from '../support/redis-cluster.mjs';
import { uniquePrefix } from '../support/redis.js';
import { testKeys } from '../support/keys.js';
import { TcpProxy } from '../support/tcp-proxy.js';
import { waitFor } from '../support/wait-for.js';

/*
 * KNOWN DEFECT, reproduced (docs › Limitations): the Redis Cluster counterpart of publish-defects' lost-reply test.
 * ioredis' Cluster sends a command again when its node connection closed with it in flight (after
 * retryDelayOnFailover), though the node may have run it: a publish whose reply was lost is stored twice (and, on a
 * partitioned topic being rescaled at that moment, could land in a second partition). On a single server the
 * transport turns this off (maxRetriesPerRequest 0); on a Cluster, turning it off (retryDelayOnFailover 0) also fails
 * commands that ioredis itself disconnects while refreshing its node pool — never sent, yet reported as ambiguous —
 * which broke cluster-testing-harness, so it is not done yet. `it.failing`: this test reports success while the defect
 * is there and fails once it is fixed, to be turned into a plain test then.
 *
 * The node that serves the stream is reached through a TCP proxy (natMap), so its reply can be held and the
 * connection reset after the write ran.
 */
describe('Redis Cluster: a write whose reply was lost is re-sent (known defect)', () => {
  let cluster: RedisCluster;

  beforeAll(async () => {
    cluster = await RedisCluster.start();
  });

  afterAll(async () => {
    await cluster?.stop();
  });

  it.failing('fails the emit with AmbiguousWriteError and stores it once', async () => {
    const prefix = uniquePrefix('cl-lost-reply');
    const keys = testKeys(prefix);
    const stream = keys.stream('once.event');
    const master = await cluster.masterOf(stream);
    const proxy = await TcpProxy.start(master.host, master.port);
    const natMap = { [`${master.host}:${master.port}`]: { host: '127.0.0.1', port: proxy.port } };
    // Seeds: the other nodes only, so the stream's node is always reached through the proxy.
    const seeds = cluster.nodes.filter((node) => node.port !== master.port);
    const client = new RedisStreamsClient(testConfig(prefix, { connection: { cluster: { nodes: seeds, options: { natMap } } } }));
    const admin = new Redis(master.port, master.host, { maxRetriesPerRequest: 1 });
    const raw = new Cluster(cluster.nodes, { redisOptions: { maxRetriesPerRequest: 1 } });
    try {
      await lastValueFrom(client.emit<string>('once.event', { n: 0 }));
      expect(proxy.accepted).toBeGreaterThan(0);
      // The emit's doorbell ring (a write, maybe to the same node) follows it: once sent, the only write the pause
      // below can hold is the next emit's.
      await waitFor(async () => (await raw.xlen(keys.doorbell())) >= 1, { message: 'the first doorbell ring' });
      await admin.call('CLIENT', 'PAUSE', '20000', 'WRITE');
      const outcome = lastValueFrom(client.emit<string>('once.event', { n: 1 })).then(
        () => undefined,
        (error: unknown) => error,
      );
      await waitFor(async () => /blocked_clients:[1-9]/.test(await admin.info('clients')), { message: 'the write to reach the node' });
      proxy.setMode('stall');
      await admin.call('CLIENT', 'UNPAUSE');
      await waitFor(async () => (await admin.xlen(stream)) === 2, { message: 'the write to be run' });
      proxy.setMode('drop');
      proxy.setMode('pass');
      expect(await outcome).toBeInstanceOf(AmbiguousWriteError);
      await waitFor(
        () =>
          lastValueFrom(client.emit<string>('once.event', { n: 2 })).then(
            () => true,
            () => false,
          ),
        { message: 'an emit after the reset' },
      );
      const entries = await admin.xrange(stream, '-', '+');
      expect(entries.map(([, fields]) => JSON.parse(fields[fields.indexOf('data') + 1]!).n)).toEqual([0, 1, 2]);
    } finally {
      raw.disconnect();
      admin.disconnect();
      await client.close();
      await proxy.close();
    }
  }, 30_000);
});
