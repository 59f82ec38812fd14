/**
 * Defects of the publish path (issue 12, items 7–9), against throw-away redis-server processes:
 * - 7: with `connection.waitReplicas`, concurrent emits do not wait for each other's `WAIT`: each settles within
 *   `waitTimeoutMs` (plus a round-trip margin), with or without a replica;
 * - 8: a payload whose JSON is longer than a JavaScript string can hold fails with `PayloadTooLargeError`, not
 *   `RangeError`;
 * - 9: emits in flight when Redis dies settle with success, `RedisUnavailableError` (certainly not written) or
 *   `AmbiguousWriteError` (may have been written), never with an ioredis error; an emit whose reply was lost in a
 *   connection reset is not re-sent on reconnect (written twice; found by the soak, seed 42).
 */
import { constants } from 'node:buffer';
import { Redis } from 'ioredis';
import { lastValueFrom } from 'rxjs';
import {
  AmbiguousWriteError,
  PayloadTooLargeError,
  RedisStreamsClient,
  RedisStreamsError,
  RedisUnavailableError,
  ReplicationTimeoutError,
} from 'nestjs-redis-streams-enterprise';
import { testConfig } from '../support/nest-apps.js';
import { RedisCluster } from '../support/redis-cluster.mjs';
import { RedisProcess } from '../support/redis-process.mjs';
import { uniquePrefix } from '../support/redis.js';
import { testKeys } from '../support/keys.js';
import { TcpProxy } from '../support/tcp-proxy.js';
import { waitFor } from '../support/wait-for.js';

/** How one emit settled, and how long after it was called. */
interface Settled {
  readonly id?: string;
  readonly error?: unknown;
  readonly afterMs: number;
}

function settle(emit: () => Promise<string>): Promise<Settled> {
  const started = Date.now();
  return emit().then(
    (id) => ({ id, afterMs: Date.now() - started }),
    (error: unknown) => ({ error, afterMs: Date.now() - started }),
  );
}

const { MAX_STRING_LENGTH } = constants;

/** Margin over waitTimeoutMs for round trips on a loaded 2-core machine; the defect made the n-th emit wait n × waitTimeoutMs. */
const MARGIN_MS = 1_500;

describe('publish path defects (issue 12, items 7–9)', () => {
  describe('connection.waitReplicas: concurrent emits do not queue behind each other', () => {
    let primary: RedisProcess;

    beforeAll(async () => {
      primary = await RedisProcess.start();
    });

    afterAll(async () => {
      await primary.stop();
    });

    it.each([5, 14])('%i concurrent emits without a replica all fail with ReplicationTimeoutError within waitTimeoutMs', async (count) => {
      const waitTimeoutMs = 1_000;
      const client = new RedisStreamsClient(
        testConfig(uniquePrefix('wait-none'), { connection: { url: primary.url, waitReplicas: 1, waitTimeoutMs } }),
      );
      try {
        await client.connect();
        const outcomes = await Promise.all(
          Array.from({ length: count }, (_, n) => settle(() => lastValueFrom(client.emit<string>('unreplicated.event', { n })))),
        );
        for (const outcome of outcomes) {
          expect(outcome.error).toBeInstanceOf(ReplicationTimeoutError);
          expect(outcome.error).toMatchObject({ replicasConfirmed: 0, replicasRequired: 1 });
          expect((outcome.error as ReplicationTimeoutError).entryId).toMatch(/^\d+-\d+$/);
        }
        // The guarantee itself: no emit waits longer than waitTimeoutMs (plus round trips).
        expect(Math.max(...outcomes.map((o) => o.afterMs))).toBeLessThan(waitTimeoutMs + MARGIN_MS);
        // Every entry was stored on the primary (only its replication is unconfirmed).
        const ids = outcomes.map((o) => (o.error as ReplicationTimeoutError).entryId);
        expect(new Set(ids).size).toBe(count);
      } finally {
        await client.close();
      }
    });

    it('emits sent while an earlier WAIT is in flight still settle within waitTimeoutMs of their own start', async () => {
      const waitTimeoutMs = 1_000;
      const client = new RedisStreamsClient(
        testConfig(uniquePrefix('wait-waves'), { connection: { url: primary.url, waitReplicas: 1, waitTimeoutMs } }),
      );
      try {
        await client.connect();
        // Three waves 300 ms apart: the later ones are written while the first wave's WAIT blocks the connection.
        const waves = [0, 300, 600].map(
          (delayMs) =>
            new Promise<Settled[]>((resolve) => {
              setTimeout(() => {
                const wave = Array.from({ length: 5 }, (_, n) => settle(() => lastValueFrom(client.emit<string>('waves.event', { n }))));
                resolve(Promise.all(wave));
              }, delayMs).unref();
            }),
        );
        const outcomes = (await Promise.all(waves)).flat();
        expect(outcomes).toHaveLength(15);
        for (const outcome of outcomes) expect(outcome.error).toBeInstanceOf(ReplicationTimeoutError);
        expect(Math.max(...outcomes.map((o) => o.afterMs))).toBeLessThan(waitTimeoutMs + MARGIN_MS);
      } finally {
        await client.close();
      }
    });

    it('with a replica connected, concurrent emits resolve once the replica has their entries', async () => {
      const replica = await RedisProcess.start({ args: ['--replicaof', '127.0.0.1', String(primary.port)] });
      const prefix = uniquePrefix('wait-replica');
      const keys = testKeys(prefix);
      const client = new RedisStreamsClient(testConfig(prefix, { connection: { url: primary.url, waitReplicas: 1, waitTimeoutMs: 5_000 } }));
      const onReplica = new Redis(replica.url, { maxRetriesPerRequest: 1, disconnectTimeout: 100 });
      onReplica.on('error', () => undefined);
      try {
        await waitFor(async () => /master_link_status:up/.test(await onReplica.info('replication')), { message: 'replication to start' });
        const count = 50;
        const outcomes = await Promise.all(
          Array.from({ length: count }, (_, n) => settle(() => lastValueFrom(client.emit<string>('replicated.event', { n })))),
        );
        expect(outcomes.filter((o) => o.error !== undefined)).toEqual([]);
        // WAIT confirmed each one, so the replica already has every entry.
        const onReplicaIds = (await onReplica.xrange(keys.stream('replicated.event'), '-', '+')).map(([id]) => id);
        expect(onReplicaIds.sort()).toEqual(outcomes.map((o) => o.id).sort());
      } finally {
        onReplica.disconnect();
        await client.close();
        await replica.stop();
      }
    });
  });

  describe('connection.waitReplicas on a Redis Cluster (3 masters, 1 replica each): one WAIT queue per master', () => {
    let cluster: RedisCluster;

    beforeAll(async () => {
      cluster = await RedisCluster.start({ masters: 3, replicasPerMaster: 1 });
    });

    afterAll(async () => {
      await cluster?.stop();
    });

    /** 14 concurrent emits to each of 6 patterns (spread over the masters). */
    function emitEverywhere(client: RedisStreamsClient): Promise<Settled[]> {
      const patterns = ['c.alpha', 'c.beta', 'c.gamma', 'c.delta', 'c.epsilon', 'c.zeta'];
      return Promise.all(
        patterns.flatMap((pattern) => Array.from({ length: 14 }, (_, n) => settle(() => lastValueFrom(client.emit<string>(pattern, { n }))))),
      );
    }

    it('with waitReplicas 1, concurrent emits on every master resolve, and each replica has its master\'s entries', async () => {
      const prefix = uniquePrefix('cwait');
      const keys = testKeys(prefix);
      const client = new RedisStreamsClient(
        testConfig(prefix, { connection: { cluster: { nodes: cluster.nodes }, waitReplicas: 1, waitTimeoutMs: 5_000 } }),
      );
      try {
        const outcomes = await emitEverywhere(client);
        expect(outcomes.filter((o) => o.error !== undefined).map((o) => String(o.error))).toEqual([]);
        const stream = keys.stream('c.alpha');
        const [replica] = await cluster.replicasOf(await cluster.masterOf(stream));
        const onReplica = new Redis(replica.port, replica.host, { maxRetriesPerRequest: 1, disconnectTimeout: 100 });
        try {
          // READONLY: a cluster replica answers reads of its master's slots itself instead of redirecting them.
          await onReplica.call('READONLY');
          expect(await onReplica.xlen(stream)).toBe(14);
        } finally {
          onReplica.disconnect();
        }
      } finally {
        await client.close();
      }
    });

    it('with waitReplicas 2 (one replica only), every emit fails with ReplicationTimeoutError within waitTimeoutMs', async () => {
      const waitTimeoutMs = 1_000;
      const client = new RedisStreamsClient(
        testConfig(uniquePrefix('cwait-none'), { connection: { cluster: { nodes: cluster.nodes }, waitReplicas: 2, waitTimeoutMs } }),
      );
      try {
        await client.connect();
        const outcomes = await emitEverywhere(client);
        for (const outcome of outcomes) {
          expect(outcome.error).toBeInstanceOf(ReplicationTimeoutError);
          expect(outcome.error).toMatchObject({ replicasConfirmed: 1, replicasRequired: 2 });
        }
        expect(Math.max(...outcomes.map((o) => o.afterMs))).toBeLessThan(waitTimeoutMs + MARGIN_MS);
      } finally {
        await client.close();
      }
    });
  });

  it('a payload whose JSON is longer than a JavaScript string can hold fails with PayloadTooLargeError', async () => {
    const server = await RedisProcess.start();
    const client = new RedisStreamsClient(
      testConfig(uniquePrefix('huge'), { connection: { url: server.url }, streams: { maxPayloadBytes: 536_870_912 } }),
    );
    try {
      await client.connect();
      // 520 references to one 1 MiB string: a small object whose JSON (545 MB) overflows the longest string V8 allows.
      const chunk = 'x'.repeat(2 ** 20);
      const payload = { parts: Array.from({ length: 520 }, () => chunk) };
      const error = await lastValueFrom(client.emit('huge.event', payload)).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(PayloadTooLargeError);
      expect(error).toMatchObject({ code: 'PAYLOAD_TOO_LARGE', maxBytes: 536_870_912 });
      expect((error as PayloadTooLargeError).sizeBytes).toBeGreaterThan(MAX_STRING_LENGTH);
      expect((error as PayloadTooLargeError).cause).toBeInstanceOf(RangeError);
    } finally {
      await client.close();
      await server.stop();
    }
  });

  it('emits in flight when Redis dies fail with AmbiguousWriteError, later ones with RedisUnavailableError, never with ioredis errors', async () => {
    const server = await RedisProcess.start();
    const prefix = uniquePrefix('ambiguous');
    const keys = testKeys(prefix);
    const client = new RedisStreamsClient(testConfig(prefix, { connection: { url: server.url } }));
    const admin = new Redis(server.url, { maxRetriesPerRequest: 1, disconnectTimeout: 100 });
    admin.on('error', () => undefined);
    try {
      const stored = await Promise.all(Array.from({ length: 20 }, (_, n) => settle(() => lastValueFrom(client.emit<string>('doomed.event', { n })))));
      expect(stored.filter((o) => o.error !== undefined)).toEqual([]);
      // Redis holds every write from now on unanswered (CLIENT PAUSE WRITE), so these emits are surely in flight when it
      // dies; whether such a write was stored is exactly what the producer cannot know.
      await admin.call('CLIENT', 'PAUSE', '20000', 'WRITE');
      const outcomes = Array.from({ length: 200 }, (_, n) => settle(() => lastValueFrom(client.emit<string>('doomed.event', { n: 20 + n }))));
      await waitFor(async () => /blocked_clients:[1-9]/.test(await admin.info('clients')), { message: 'the writes to reach Redis' });
      await server.kill();
      const inFlight = await Promise.all(outcomes);
      // Once the client noticed, a new emit is certainly not written.
      await waitFor(() => client.unwrap<Redis>().status !== 'ready', { message: 'the client to notice' });
      const after = await settle(() => lastValueFrom(client.emit<string>('doomed.event', { n: -1 })));
      const settled = [...inFlight, after];
      const failures = settled.filter((o) => o.error !== undefined).map((o) => o.error);
      const foreign = failures.filter((e) => !(e instanceof RedisUnavailableError || e instanceof AmbiguousWriteError));
      expect([...new Set(foreign.map((e) => `${(e as Error).name}: ${(e as Error).message}`))]).toEqual([]);
      const ambiguous = failures.filter((e): e is AmbiguousWriteError => e instanceof AmbiguousWriteError);
      expect(ambiguous).toHaveLength(inFlight.length);
      for (const error of ambiguous) {
        expect(error).toBeInstanceOf(RedisStreamsError);
        expect(error).toMatchObject({ code: 'WRITE_AMBIGUOUS', stream: keys.stream('doomed.event') });
        expect(error.messageId).toMatch(/^[0-9a-f-]{36}$/);
        expect(error.cause).toBeInstanceOf(Error);
      }
      expect(after.error).toBeInstanceOf(RedisUnavailableError);
    } finally {
      admin.disconnect();
      await client.close();
      await server.stop();
    }
  });

  it('an emit whose reply is lost in a connection reset fails with AmbiguousWriteError and is written once, not re-sent', async () => {
    const server = await RedisProcess.start();
    const proxy = await TcpProxy.start('127.0.0.1', Number(new URL(server.url).port));
    const prefix = uniquePrefix('lost-reply-emit');
    const keys = testKeys(prefix);
    const client = new RedisStreamsClient(testConfig(prefix, { connection: { url: proxy.url } }));
    const admin = new Redis(server.url, { maxRetriesPerRequest: 1 });
    try {
      await lastValueFrom(client.emit<string>('once.event', { n: 0 }));
      // The write reaches Redis and waits there (CLIENT PAUSE WRITE); the link stalls, Redis runs it, its reply is
      // held in the proxy, and the reset throws it away: written, and the producer cannot know.
      await admin.call('CLIENT', 'PAUSE', '20000', 'WRITE');
      const outcome = settle(() => lastValueFrom(client.emit<string>('once.event', { n: 1 })));
      await waitFor(async () => /blocked_clients:[1-9]/.test(await admin.info('clients')), { message: 'the write to reach Redis' });
      proxy.setMode('stall');
      await admin.call('CLIENT', 'UNPAUSE');
      await waitFor(async () => (await admin.xlen(keys.stream('once.event'))) === 2, { message: 'the write to be run' });
      proxy.setMode('drop');
      proxy.setMode('pass');
      const settled = await outcome;
      expect(settled.error).toBeInstanceOf(AmbiguousWriteError);
      // A re-sent write would have landed once more after the reconnect.
      await waitFor(() => client.unwrap<Redis>().status === 'ready', { message: 'the client to reconnect' });
      await lastValueFrom(client.emit<string>('once.event', { n: 2 }));
      const entries = await admin.xrange(keys.stream('once.event'), '-', '+');
      expect(entries.map(([, fields]) => JSON.parse(fields[fields.indexOf('data') + 1]!).n)).toEqual([0, 1, 2]);
    } finally {
      admin.disconnect();
      await client.close();
      await proxy.close();
      await server.stop();
    }
  });
});
