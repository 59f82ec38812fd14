import { Cluster } from 'ioredis';
import { lastValueFrom } from 'rxjs';
import { RedisStreamsClient, RedisStreamsServer } from 'nestjs-redis-streams-enterprise';
import { testConfig } from '../support/nest-apps.js';
import { RedisCluster } from '../support/redis-cluster.mjs';
import { uniquePrefix } from '../support/redis.js';
import { testKeys } from '../support/keys.js';
import { HandlingLog, reckon } from '../support/ledger.js';
import { waitFor } from '../support/wait-for.js';

/*
 * The doorbell is only a hint (cluster/doorbell.ts), but a consumer idles on it: when the master that holds it dies,
 * rings and the consumer's doorbell read fail until a replica is promoted. Nothing acknowledged may be lost or stuck:
 * the producer keeps the names it could not ring and rings them once the doorbell answers again, and the consumer
 * sweeps everything after a failed doorbell read. `sweepMs` is at its maximum (60 s), so the periodic sweep cannot
 * be what delivers within the waits below.
 */
const MESSAGES = 1_500;
const RATE = 300;
const KILL_AT = 300;

const hold = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('Redis Cluster (3 masters + 3 replicas): the master holding the doorbell is killed mid-run', () => {
  const prefix = uniquePrefix('cluster-doorbell');
  const keys = testKeys(prefix);
  const doorbell = keys.doorbell();
  let cluster: RedisCluster;
  let raw: Cluster;

  beforeAll(async () => {
    cluster = await RedisCluster.start({ masters: 3, replicasPerMaster: 1, nodeTimeoutMs: 1_000 });
    raw = new Cluster(cluster.nodes, { redisOptions: { maxRetriesPerRequest: 1 } });
    raw.on('error', () => undefined);
  }, 60_000);

  afterAll(async () => {
    raw?.disconnect();
    await cluster?.stop();
  }, 30_000);

  it('emits keep being delivered while the doorbell is down and after, none lost; a ring that failed is sent later', async () => {
    const bellMaster = await cluster.masterOf(doorbell);
    // Topics whose streams live on other masters, so the emits themselves survive the kill.
    const elsewhere = async (name: string) => {
      let i = 0;
      while ((await cluster.masterOf(keys.stream(`${name}.${i}`))).id === bellMaster.id) i++;
      return `${name}.${i}`;
    };
    const pattern = await elsewhere('cd.orders');
    // One message is written to this topic right after the kill (its ring cannot be sent then) and nothing ever
    // again: no later ring of a busy stream can carry it along.
    const lonely = await elsewhere('cd.lonely');
    const config = testConfig(prefix, { connection: { cluster: { nodes: cluster.nodes } }, consumer: { group: 'bell', sweepMs: 60_000 } });
    const handled = new HandlingLog();
    const consumer = new RedisStreamsServer(config);
    consumer.addHandler(pattern, async (data: { n: number }) => handled.record(data.n), true);
    let lonelyHandled = false;
    consumer.addHandler(lonely, async () => void (lonelyHandled = true), true);
    await new Promise<void>((resolve, reject) => consumer.listen((error?: unknown) => (error ? reject(error) : resolve())));
    const client = new RedisStreamsClient(config);
    const acked = new Set<number>();
    const failed: number[] = [];
    const emit = async (n: number) => {
      try {
        await lastValueFrom(client.emit(pattern, { n }));
        acked.add(n);
      } catch {
        failed.push(n); // the whole cluster refuses writes while a slot has no master (CLUSTERDOWN): retried below
      }
    };
    try {
      let healing: Promise<void> | undefined;
      let lonelyEmit: Promise<unknown> | undefined;
      let promotedAt = 0;
      const started = Date.now();
      const inFlight = new Set<Promise<void>>();
      for (let n = 0; n < MESSAGES; n++) {
        const due = started + (n * 1000) / RATE;
        if (due > Date.now()) await hold(due - Date.now()); // pacing of the producer
        if (n === KILL_AT) {
          healing = (async () => {
            await cluster.kill(bellMaster);
            // Before the cluster marks the node failed (cluster-node-timeout), writes to the other masters still work.
            lonelyEmit = lastValueFrom(client.emit(lonely, { n: -1 }));
            await cluster.waitForFailover(bellMaster);
            promotedAt = Date.now();
            await cluster.restart(bellMaster);
            await cluster.waitForReplicas();
          })();
          healing.catch(() => undefined); // awaited after the run
        }
        const p: Promise<void> = emit(n).finally(() => inFlight.delete(p));
        inFlight.add(p);
      }
      await Promise.all(inFlight);
      await healing;
      await lonelyEmit;
      for (const n of failed.splice(0)) {
        for (let attempt = 1; !acked.has(n); attempt++) {
          if (attempt > 20) throw new Error(`message ${n} could not be published after the failover`);
          await emit(n);
          if (!acked.has(n)) await hold(100);
        }
      }
      await waitFor(() => reckon(handled, acked).lost.length === 0, { timeoutMs: 30_000, message: 'every acknowledged emit to be handled' });
      expect(acked.size).toBe(MESSAGES);
      expect(reckon(handled, acked).lost).toEqual([]);
      expect(promotedAt).toBeGreaterThan(0);
      await waitFor(() => lonelyHandled, { timeoutMs: 15_000, message: 'the message written while the doorbell was down' });

      // The doorbell works again on its new master: a fresh emit is read through its ring, not by a sweep.
      await hold(500);
      const ringsBefore = Number(await raw.xlen(doorbell));
      await emit(MESSAGES);
      await waitFor(() => handled.has(MESSAGES), { timeoutMs: 10_000, message: 'an emit after the failover' });
      expect(Number(await raw.xlen(doorbell))).toBeGreaterThan(ringsBefore);
      expect((await consumer.getStatus()).healthy).toBe(true);
    } finally {
      await client.close();
      await consumer.close();
    }
  }, 120_000);
});
