import { Controller } from '@nestjs/common';
import type { INestMicroservice } from '@nestjs/common';
import { Payload } from '@nestjs/microservices';
import { Redis } from 'ioredis';
import { lastValueFrom } from 'rxjs';
import { RedisStreamsClient, StreamEvent } from 'nestjs-redis-streams-enterprise';
import { startConsumer, testConfig } from '../support/nest-apps.js';
import { RedisCluster } from '../support/redis-cluster.mjs';
import { uniquePrefix } from '../support/redis.js';
import { waitFor } from '../support/wait-for.js';

const handled: number[] = [];

@Controller()
class DownController {
  @StreamEvent('down.jobs')
  handle(@Payload() data: { n: number }) {
    handled.push(data.n);
  }
}

/**
 * A consumer or producer started while the Cluster is down (a master died and is not replaced yet: CLUSTER INFO says
 * cluster_state:fail) must start once the Cluster is back. ioredis' Cluster.connect() never settles in that case (its
 * ready check fails, it reconnects under a new promise and forgets the first), so listen() waited forever: found by
 * the cluster soak, where a consumer restarted during a failover never listened (3 of 8 starts in a row here).
 */
describe('Redis Cluster: starting while the Cluster is down', () => {
  let cluster: RedisCluster;

  beforeAll(async () => {
    cluster = await RedisCluster.start({ masters: 3, replicasPerMaster: 0, nodeTimeoutMs: 1_000 });
  });

  afterAll(async () => {
    await cluster?.stop();
  });

  it('listens and delivers once the Cluster is back', async () => {
    const prefix = uniquePrefix('cl-start-down');
    const cfg = testConfig(prefix, { connection: { cluster: { nodes: cluster.nodes } } });
    const masters = await cluster.topology();
    const [victim, live] = [masters[1], masters[0]];
    const probe = new Redis(live.port, live.host, { maxRetriesPerRequest: 1 });
    let app: INestMicroservice | undefined;
    let client: RedisStreamsClient | undefined;
    try {
      await cluster.kill(victim);
      await waitFor(async () => /cluster_state:fail/.test(String(await probe.call('CLUSTER', 'INFO'))), { timeoutMs: 15_000, message: 'cluster_state:fail' });
      const started = startConsumer(cfg, [DownController]).then(
        (s) => ((app = s.app), 'listening'),
        (error: unknown) => `failed: ${String(error)}`,
      );
      client = new RedisStreamsClient(cfg);
      const emitted = lastValueFrom(client.emit('down.jobs', { n: 1 })).then(
        () => 'stored',
        (error: unknown) => `failed: ${String(error)}`,
      );
      // Both are waiting for the Cluster (their first ready check failed) when it comes back.
      await new Promise((resolve) => setTimeout(resolve, 1_500));
      await cluster.restart(victim);
      await waitFor(async () => /cluster_state:ok/.test(String(await probe.call('CLUSTER', 'INFO'))), { timeoutMs: 15_000, message: 'cluster_state:ok' });
      const within = (p: Promise<string>) => Promise.race([p, new Promise<string>((resolve) => setTimeout(() => resolve('still waiting after 15 s'), 15_000))]);
      expect(await within(started)).toBe('listening');
      expect(await within(emitted)).toBe('stored');
      await waitFor(() => handled.includes(1), { message: 'the message to be handled' });
    } finally {
      probe.disconnect();
      await client?.close();
      await app?.close();
    }
  });
});
