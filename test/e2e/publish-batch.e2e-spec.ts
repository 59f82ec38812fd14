/**
 * The writes of one event-loop turn go to Redis together per stream (producer/publish-batcher.ts): scripted publishes
 * (global sequence numbers, idempotency keys, layout epochs) in one publishBatch script call, plain XADDs issued
 * together (one socket write on a single server). Against a throw-away redis-server of its own (so
 * its command statistics count only this file's calls):
 * - the emits of one turn are appended in call order with contiguous sequence numbers, in far fewer script calls
 *   than messages;
 * - an idempotency key repeated within a batch is stored once, and every emit resolves with that entry's id;
 * - a write that is not batched (a claim-checked payload, a plain XADD) never overtakes emits queued before it;
 * - a refused write rejects the emits of its batch with Redis's reason, and the client keeps publishing afterwards.
 */
import { Redis } from 'ioredis';
import { lastValueFrom } from 'rxjs';
import { RedisStreamsClient, RedisStreamsRecord, type RedisStreamsEnterpriseConfig } from 'nestjs-redis-streams-enterprise';
import { testConfig } from '../support/nest-apps.js';
import { RedisProcess } from '../support/redis-process.mjs';
import { uniquePrefix } from '../support/redis.js';
import { testKeys } from '../support/keys.js';

const GLOBAL: RedisStreamsEnterpriseConfig = { ordering: { enabled: true, strategy: 'global' } };

describe('batched publish', () => {
  let server: RedisProcess;
  let redis: Redis;

  beforeAll(async () => {
    server = await RedisProcess.start();
    redis = new Redis(server.url);
  });

  afterAll(async () => {
    redis.disconnect();
    await server.stop();
  });

  async function withClient<T>(prefix: string, overrides: RedisStreamsEnterpriseConfig, run: (client: RedisStreamsClient) => Promise<T>): Promise<T> {
    const base = testConfig(prefix, overrides);
    const client = new RedisStreamsClient({ ...base, connection: { url: server.url } });
    await client.connect();
    try {
      return await run(client);
    } finally {
      await client.close();
    }
  }

  /** The `n` of every entry's payload and its `seq` field, in stream order. */
  async function entriesOf(stream: string): Promise<{ n: number; seq?: string; id: string }[]> {
    const entries = await redis.xrange(stream, '-', '+');
    return entries.map(([id, fields]) => {
      const at = (name: string) => fields[fields.indexOf(name) + 1];
      return { id, n: (JSON.parse(at('data')!) as { n: number }).n, seq: fields.includes('seq') ? at('seq') : undefined };
    });
  }

  async function scriptCalls(): Promise<number> {
    const stats = await redis.info('commandstats');
    return Number(/cmdstat_evalsha:calls=(\d+)/.exec(stats)?.[1] ?? 0) + Number(/cmdstat_eval:calls=(\d+)/.exec(stats)?.[1] ?? 0);
  }

  it('global order: the emits of one turn are appended in call order with contiguous sequence numbers, batched', async () => {
    const prefix = uniquePrefix('batch-global');
    const count = 600;
    await withClient(prefix, GLOBAL, async (client) => {
      await lastValueFrom(client.emit('batch.global', { n: -1 })); // loads the script and the layout
      const before = await scriptCalls();
      const ids = await Promise.all(Array.from({ length: count }, (_, n) => lastValueFrom(client.emit<string>('batch.global', { n }))));
      const calls = (await scriptCalls()) - before;
      const entries = (await entriesOf(testKeys(prefix).partition('batch.global', 0))).filter((e) => e.n >= 0);
      expect(entries.map((e) => e.n)).toEqual(Array.from({ length: count }, (_, n) => n));
      expect(entries.map((e) => e.id)).toEqual(ids);
      const first = Number(entries[0]!.seq);
      expect(entries.map((e) => Number(e.seq))).toEqual(Array.from({ length: count }, (_, n) => first + n));
      // One script call per batch (at most 128 messages each), not one per message.
      expect(calls).toBeGreaterThanOrEqual(Math.ceil(count / 128));
      expect(calls).toBeLessThan(count / 10);
    });
  });

  it('plain emits of one turn (issued together) are appended in call order, each resolving with its own entry id', async () => {
    const prefix = uniquePrefix('batch-plain');
    const count = 300;
    await withClient(prefix, {}, async (client) => {
      const ids = await Promise.all(Array.from({ length: count }, (_, n) => lastValueFrom(client.emit<string>('batch.plain', { n }))));
      const entries = await entriesOf(testKeys(prefix).stream('batch.plain'));
      expect(entries.map((e) => e.n)).toEqual(Array.from({ length: count }, (_, n) => n));
      expect(entries.map((e) => e.id)).toEqual(ids);
    });
  });

  it('emits of one turn to several streams (8 partitions) all go out, each stream in call order', async () => {
    const prefix = uniquePrefix('batch-partitions');
    const partitioned: RedisStreamsEnterpriseConfig = {
      partitioning: { enabled: true, strategy: 'hash', partitionCount: 8, partitionKey: 'key' },
      ordering: { enabled: true, strategy: 'partition', partitionKey: 'key' },
    };
    await withClient(prefix, partitioned, async (client) => {
      const count = 400;
      // One socket, corked once per turn however many streams the turn wrote to (a cork left behind hangs them all).
      const ids = await Promise.all(Array.from({ length: count }, (_, n) => lastValueFrom(client.emit<string>('batch.parts', { key: `k${n % 40}`, n }))));
      expect(ids.every((id) => /^\d+-\d+$/.test(id))).toBe(true); // ids repeat across partitions (one clock, several streams)
      const seen: number[] = [];
      for (let p = 0; p < 8; p++) {
        const ns = (await entriesOf(testKeys(prefix).partition('batch.parts', p))).map((e) => e.n);
        expect(ns).toEqual([...ns].sort((a, b) => a - b));
        seen.push(...ns);
      }
      expect(seen.sort((a, b) => a - b)).toEqual(Array.from({ length: count }, (_, n) => n));
    });
  });

  it('an idempotency key repeated within one batch is stored once; every emit resolves with its entry id', async () => {
    const prefix = uniquePrefix('batch-idem');
    await withClient(prefix, {}, async (client) => {
      const emit = (n: number, key: string) => lastValueFrom(client.emit<string>('batch.idem', new RedisStreamsRecord({ n }, { idempotencyKey: key })));
      const ids = await Promise.all([emit(0, 'a'), emit(1, 'b'), emit(2, 'a'), emit(3, 'c'), emit(4, 'b')]);
      const entries = await entriesOf(testKeys(prefix).stream('batch.idem'));
      expect(entries.map((e) => e.n)).toEqual([0, 1, 3]);
      expect(ids).toEqual([entries[0]!.id, entries[1]!.id, entries[0]!.id, entries[2]!.id, entries[1]!.id]);
    });
  });

  it('a write that is not batched (a claim-checked payload) does not overtake emits queued before it', async () => {
    const prefix = uniquePrefix('batch-mixed');
    await withClient(prefix, { streams: { claimCheckThresholdBytes: 4_096 } }, async (client) => {
      const big = 'x'.repeat(8_192);
      const emits: Promise<unknown>[] = [];
      for (let n = 0; n < 60; n++) {
        // Every third emit is plain (XADD), every tenth claim-checked (upload + publish script), the rest idempotent.
        const payload = n % 10 === 9 ? { n, big } : { n };
        const data = n % 3 === 0 && n % 10 !== 9 ? payload : new RedisStreamsRecord(payload, { idempotencyKey: `k${n}` });
        emits.push(lastValueFrom(client.emit('batch.mixed', data)));
      }
      await Promise.all(emits);
      const stream = testKeys(prefix).stream('batch.mixed');
      const entries = await redis.xrange(stream, '-', '+');
      expect(entries.some(([, fields]) => fields.includes('blob'))).toBe(true);
      expect(entries).toHaveLength(60);
      const ns = entries.map(([, fields]) =>
        fields.includes('data') ? (JSON.parse(fields[fields.indexOf('data') + 1]!) as { n: number }).n : undefined,
      );
      // Claim-checked entries carry no inline data; every other entry sits at its call position, so they do too.
      const inline = ns.map((n, at) => ({ n, at })).filter((e) => e.n !== undefined);
      expect(inline.map((e) => e.n)).toEqual(Array.from({ length: 60 }, (_, n) => n).filter((n) => n % 10 !== 9));
      for (const { n, at } of inline) expect(at).toBe(n);
    });
  });

  it.each([
    ['scripted (global order)', GLOBAL, (prefix: string) => testKeys(prefix).partition('batch.refused', 0)],
    ['plain (XADDs issued together)', {}, (prefix: string) => testKeys(prefix).stream('batch.refused')],
  ] as const)('a refused write, %s, rejects the emits of its batch with the reason, and later emits are written', async (_, config, streamOf) => {
    const prefix = uniquePrefix('batch-refused');
    const stream = streamOf(prefix);
    await withClient(prefix, config, async (client) => {
      await lastValueFrom(client.emit('batch.refused', { n: -1 }));
      await redis.del(stream);
      await redis.set(stream, 'not a stream');
      const outcomes = await Promise.allSettled(Array.from({ length: 5 }, (_, n) => lastValueFrom(client.emit('batch.refused', { n }))));
      for (const outcome of outcomes) {
        expect(outcome.status).toBe('rejected');
        expect(String((outcome as PromiseRejectedResult).reason)).toMatch(/WRONGTYPE/);
      }
      await redis.del(stream);
      await Promise.all(Array.from({ length: 5 }, (_, n) => lastValueFrom(client.emit('batch.refused', { n: 10 + n }))));
      expect((await entriesOf(stream)).map((e) => e.n)).toEqual([10, 11, 12, 13, 14]);
    });
  });
});
