import { Controller, Inject, Injectable, type INestMicroservice } from '@nestjs/common';
import { Payload } from '@nestjs/microservices';
import { Cluster } from 'ioredis';
import { lastValueFrom } from 'rxjs';
import { RedisStreamsClient, ReplicationTimeoutError, StreamEvent, type RedisStreamsServer } from 'nestjs-redis-streams-enterprise';
import { startConsumer, testConfig } from '../support/nest-apps.js';
import { RedisCluster, keySlot, type ClusterNodeInfo } from '../support/redis-cluster.mjs';
import { cleanupPrefix, uniquePrefix } from '../support/redis.js';
import { testKeys } from '../support/keys.js';
import { HandlingLog, range, reckon } from '../support/ledger.js';
import { waitFor } from '../support/wait-for.js';

/*
 * A master of a real local Redis Cluster (3 masters, 1 replica each, cluster-node-timeout 1 s) is SIGKILLed in the
 * middle of a numbered run; its replica is promoted, the dead node is restarted (it rejoins as the new master's
 * replica, as an orchestrator would restart it) and the run goes on.
 *
 * The producer publishes with `connection.waitReplicas: 1`: an emit resolves only after the one replica confirmed
 * the entry (WAIT), so every acknowledged entry is on the node that gets promoted and must be delivered (lost = 0).
 * Emits that fail while the slot has no master (connection closed, CLUSTERDOWN) or no replica (ReplicationTimeoutError
 * between the promotion and the rejoin) are reported and retried with a new attempt number; the entry of a failed
 * attempt may still have been stored, so a message can be handled under two attempts (a producer-side copy).
 * Consumer-side duplicates (one attempt handled twice: an XACK or a delivery that the dead master had not
 * replicated yet) are counted and bounded.
 */

const PATTERN = 'cf.orders';
/** Numbered messages in the run, emitted at RATE per second with at most WINDOW in flight. */
const MESSAGES = 3_000;
const RATE = 400;
const WINDOW = 16;
/** The master is killed when this message is due (about 1.5 s into the run). */
const KILL_AT = 600;
const CONCURRENCY = 32;
const NODE_TIMEOUT_MS = 1_000;
/**
 * How long the dead node stays down after its replica was promoted (the length of a fault: an orchestrator's restart
 * time). Meanwhile the new master has no replica, so `WAIT 1` cannot be met and emits fail with
 * ReplicationTimeoutError although their entry is stored.
 */
const REJOIN_AFTER_MS = 1_000;
/**
 * Consumer-side duplicates allowed: what the consumer can have read or acknowledged on the dead master in the last
 * moments before the kill without the replica having received it yet (its in-flight window, twice).
 */
const MAX_CONSUMER_DUPLICATES = 2 * CONCURRENCY;

const hold = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const key = (n: number, attempt: number) => `${n}/${attempt}`;

/** Handlings by `n/attempt`; and per message, the attempts handled. */
@Injectable()
class Ledger extends HandlingLog<string> {
  /** n -> attempts handled. */
  readonly attemptsOf = new Map<number, Set<number>>();

  recordAttempt(n: number, attempt: number): void {
    this.record(key(n, attempt));
    const attempts = this.attemptsOf.get(n) ?? new Set<number>();
    attempts.add(attempt);
    this.attemptsOf.set(n, attempts);
  }
}

@Controller()
class OrdersController {
  constructor(@Inject(Ledger) private readonly ledger: Ledger) {}

  @StreamEvent(PATTERN)
  async handle(@Payload() data: { n: number; attempt: number }) {
    await new Promise<void>((resolve) => setImmediate(resolve));
    this.ledger.recordAttempt(data.n, data.attempt);
  }
}

interface Failure {
  readonly n: number;
  readonly attempt: number;
  readonly at: number;
  readonly error: string;
  /** Set when the entry was stored on the primary without the replica's confirmation (ReplicationTimeoutError). */
  readonly unconfirmedEntryId?: string;
}

/** The producer's side of the ledger: what Redis acknowledged (with WAIT 1) and what failed. */
class Producer {
  /** `n/attempt` -> entry id, when the emit started and when it resolved, for every acknowledged emit. */
  readonly acked = new Map<string, { entryId: string; startedAt: number; at: number }>();
  /** n -> attempt that was acknowledged. */
  readonly ackedAttempt = new Map<number, number>();
  readonly failures: Failure[] = [];
  /** Longest time one emit took to resolve or fail. */
  longestEmitMs = 0;

  constructor(private readonly client: RedisStreamsClient) {}

  async emit(n: number, attempt: number): Promise<boolean> {
    const started = Date.now();
    try {
      const entryId = await lastValueFrom(this.client.emit<string>(PATTERN, { n, attempt }));
      this.acked.set(key(n, attempt), { entryId, startedAt: started, at: Date.now() });
      this.ackedAttempt.set(n, attempt);
      return true;
    } catch (error) {
      const text = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
      this.failures.push({
        n,
        attempt,
        at: Date.now(),
        error: text.replace(/[0-9]+-[0-9]+/g, '<id>').slice(0, 100),
        unconfirmedEntryId: error instanceof ReplicationTimeoutError ? error.entryId : undefined,
      });
      return false;
    } finally {
      this.longestEmitMs = Math.max(this.longestEmitMs, Date.now() - started);
    }
  }
}

describe('Redis Cluster failover (3 masters + 3 replicas): a master is killed mid-run', () => {
  const prefix = uniquePrefix('cluster-failover');
  const stream = testKeys(prefix).stream(PATTERN);
  let cluster: RedisCluster;
  let raw: Cluster;
  let app: INestMicroservice;
  let server: RedisStreamsServer;
  let ledger: Ledger;
  let client: RedisStreamsClient;

  beforeAll(async () => {
    cluster = await RedisCluster.start({ masters: 3, replicasPerMaster: 1, nodeTimeoutMs: NODE_TIMEOUT_MS });
    raw = new Cluster(cluster.nodes, { redisOptions: { maxRetriesPerRequest: 1 } });
    raw.on('error', () => undefined); // node errors while a master is down are expected; commands report their own
    const connection = { cluster: { nodes: cluster.nodes } };
    const started = await startConsumer(
      testConfig(prefix, { connection, consumer: { consumerName: 'c0', concurrency: CONCURRENCY, batchSize: 16 } }),
      [OrdersController],
      [Ledger],
    );
    app = started.app;
    server = started.server;
    ledger = app.get(Ledger);
    client = new RedisStreamsClient(testConfig(prefix, { connection: { ...connection, waitReplicas: 1, waitTimeoutMs: 500 } }));
  }, 60_000);

  afterAll(async () => {
    await client?.close();
    await app?.close();
    if (raw) {
      await cleanupPrefix(raw, prefix);
      raw.disconnect();
    }
    await cluster?.stop();
  }, 30_000);

  it('every acknowledged emit is delivered; failed emits are reported and retried; duplicates stay bounded', async () => {
    // Warm-up: the group exists and the consumer reads.
    expect(await new Producer(client).emit(-1, 0)).toBe(true);
    await waitFor(() => ledger.has(key(-1, 0)), { message: 'the warm-up message' });

    const victim: ClusterNodeInfo = await cluster.masterOf(stream);
    const replicasBefore = await cluster.replicasOf(victim);
    expect(replicasBefore).toHaveLength(1);

    const producer = new Producer(client);
    const timeline: Record<string, number> = {};
    let promoted: ClusterNodeInfo | undefined;
    let healing: Promise<void> | undefined;
    const heal = async () => {
      await cluster.kill(victim);
      timeline.kill = Date.now();
      const failover = await cluster.waitForFailover(victim);
      promoted = failover.master;
      timeline.promoted = Date.now();
      await hold(REJOIN_AFTER_MS);
      // The dead node comes back and resyncs from the new master: until then WAIT 1 cannot be met.
      await cluster.restart(victim);
      await cluster.waitForReplicas();
      timeline.replicaBack = Date.now();
    };

    // The numbered run: paced, a bounded window of emits in flight; the kill happens while it runs.
    const started = Date.now();
    const inFlight = new Set<Promise<unknown>>();
    for (let n = 0; n < MESSAGES; n++) {
      const due = started + (n * 1000) / RATE;
      if (due > Date.now()) await hold(due - Date.now()); // pacing of the producer, not a wait for an outcome
      while (inFlight.size >= WINDOW) await Promise.race(inFlight);
      if (n === KILL_AT) {
        healing = heal();
        healing.catch(() => undefined); // awaited (and thrown) after the run; this only keeps it from being unhandled meanwhile
      }
      const p: Promise<unknown> = producer.emit(n, 0).finally(() => inFlight.delete(p));
      inFlight.add(p);
    }
    await Promise.all(inFlight);
    timeline.runEnd = Date.now();
    await healing;

    // Failed emits are retried now that the cluster has a master and a replica for the slot again.
    const failedFirst = producer.failures.length;
    for (let n = 0; n < MESSAGES; n++) {
      for (let attempt = 1; !producer.ackedAttempt.has(n); attempt++) {
        if (attempt > 20) throw new Error(`message ${n} could not be published after the failover`);
        if (!(await producer.emit(n, attempt))) await hold(100);
      }
    }
    timeline.retriesDone = Date.now();

    // Every acknowledged emit is delivered, and every message of the run was handled. A timeout of these two waits is
    // not thrown here: the figures are printed first and the assertions below say what is missing.
    const undelivered = () => reckon(ledger, producer.acked.keys()).lost;
    await waitFor(() => undelivered().length === 0, { timeoutMs: 30_000, message: 'every acknowledged message to be handled' }).catch(() => undefined);
    // Nothing pending and nothing unread: no further delivery (hence no further duplicate) can happen.
    await waitFor(
      async () => {
        const status = (await server.getStatus()).streams.find((s) => s.pattern === PATTERN);
        return status?.pending === 0 && status.lag === 0;
      },
      { timeoutMs: 30_000, message: 'the group to have nothing pending or unread' },
    ).catch(() => undefined);
    timeline.settled = Date.now();

    // The promoted node holds every acknowledged entry (WAIT 1 put each on the only replica before the emit resolved).
    const stored = new Set((await raw.xrange(stream, '-', '+')).map(([id]) => id));
    const missingFromStream = [...producer.acked.values()].filter(({ entryId }) => !stored.has(entryId)).length;

    const ackedBeforeKill = [...producer.acked.values()].filter(({ at }) => at < timeline.kill).length;
    const ackedAfterPromotion = [...producer.acked.values()].filter(({ at }) => at > timeline.promoted).length;
    // Outage as each side saw it: from the kill to the first emit started after it that was acknowledged, and to the
    // first handling of such an emit.
    const afterKill = [...producer.acked].filter(([, a]) => a.startedAt > timeline.kill);
    const emitResumedAt = Math.min(...afterKill.map(([, a]) => a.at));
    const consumerResumedAt = Math.min(...afterKill.map(([k]) => ledger.firstHandledAt.get(k) ?? Infinity));
    const consumerDuplicates = reckon(ledger, producer.acked.keys()).duplicates;
    const producerCopies = [...ledger.attemptsOf.entries()].filter(([n, attempts]) => n >= 0 && attempts.size > 1).length;
    const unconfirmed = producer.failures.filter((f) => f.unconfirmedEntryId);
    const errors = new Map<string, number>();
    for (const f of producer.failures) errors.set(f.error, (errors.get(f.error) ?? 0) + 1);
    const rel = (t: number) => (Number.isFinite(t) ? t - timeline.kill : null);
    const summary = {
      messages: MESSAGES,
      victim: `${victim.port} (slot ${keySlot(stream)})`,
      promoted: promoted?.port,
      promotedAfterMs: rel(timeline.promoted),
      replicaBackAfterMs: rel(timeline.replicaBack),
      emitResumedAfterMs: rel(emitResumedAt),
      consumerResumedAfterMs: rel(consumerResumedAt),
      longestEmitMs: producer.longestEmitMs,
      ackedBeforeKill,
      ackedAfterPromotion,
      failedEmits: failedFirst,
      failedIncludingRetries: producer.failures.length,
      storedButUnconfirmed: unconfirmed.length,
      unconfirmedDelivered: unconfirmed.filter((f) => ledger.has(key(f.n, f.attempt))).length,
      lost: undelivered().length,
      missingFromStream,
      consumerDuplicates,
      producerCopies,
      runMs: timeline.runEnd - started,
      settledAfterKillMs: rel(timeline.settled),
      serverMetrics: (({ received, acked, reclaimed, retried, failed }) => ({ received, acked, reclaimed, retried, failed }))(server.getMetrics()),
    };
    process.stdout.write(`[cluster-failover] ${JSON.stringify(summary)} errors=${JSON.stringify([...errors])}\n`);

    // The kill happened in the middle of the run, and the replica took over.
    expect(promoted?.port).toBe(replicasBefore[0].port);
    expect(ackedBeforeKill).toBeGreaterThan(0);
    expect(ackedAfterPromotion).toBeGreaterThan(0);
    // Nothing acknowledged was lost, and the run completed.
    expect({ lost: undelivered(), missingFromStream }).toEqual({ lost: [], missingFromStream: 0 });
    const unhandled = reckon(ledger.attemptsOf.keys(), range(0, MESSAGES)).lost;
    expect(unhandled).toEqual([]);
    expect(consumerDuplicates).toBeLessThanOrEqual(MAX_CONSUMER_DUPLICATES);
    // The consumer is healthy again and has drained the stream.
    const status = await server.getStatus();
    expect(status).toMatchObject({ healthy: true });
    expect(status.streams.find((s) => s.pattern === PATTERN)).toMatchObject({ pending: 0, lag: 0 });
  }, 120_000);
});
