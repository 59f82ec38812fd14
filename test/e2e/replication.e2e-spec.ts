import { Controller, Inject, Injectable, type INestMicroservice } from '@nestjs/common';
import { Ctx, Payload } from '@nestjs/microservices';
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { Registry } from 'prom-client';
import { lastValueFrom } from 'rxjs';
import {
  InvalidOptionsError,
  MirrorRefusedError,
  RedisStreamsClient,
  RedisStreamsContext,
  RedisStreamsRecordBuilder,
  StreamEvent,
  StreamMirror,
  type RedisStreamsEnterpriseConfig,
} from 'nestjs-redis-streams-enterprise';
import { runCli } from '../../libs/redis-streams-enterprise/src/cli/program.js';
import { startConsumer, testConfig } from '../support/nest-apps.js';
import { compareCopies, copiesIn, produce } from '../support/mirror-ledger.js';
import { RedisProcess } from '../support/redis-process.mjs';
import { uniquePrefix } from '../support/redis.js';
import { testKeys } from '../support/keys.js';
import { waitFor } from '../support/wait-for.js';

/** A mirror configuration copying `topics` from `source` (region name, Redis) into `target`. */
function mirrorConfig(
  prefix: string,
  target: { region: string; url: string },
  sources: { region: string; url: string }[],
  topics: string[],
  extra: Record<string, unknown> = {},
): RedisStreamsEnterpriseConfig {
  return {
    connection: { url: target.url },
    streams: { keyPrefix: prefix },
    replication: {
      region: target.region,
      mirrors: sources.map((s) => ({ name: `from-${s.region}`, source: { region: s.region, connection: { url: s.url } }, topics, blockMs: 100, ...extra })),
    },
  };
}

/** A message with a header, to show headers reach region B's handlers unchanged. */
const fromA = (data: { n: number; key: string }) => new RedisStreamsRecordBuilder(data).setHeaders({ 'x-region': 'A' }).build();

@Injectable()
class Received {
  readonly messages: { n: number; key: string; origin?: string }[] = [];
}

@Controller()
class OrdersController {
  constructor(@Inject(Received) private readonly received: Received) {}

  @StreamEvent('orders.created')
  created(@Payload() data: { n: number; key: string }, @Ctx() ctx: RedisStreamsContext) {
    this.received.messages.push({ ...data, origin: ctx.getHeaders()['x-region'] });
  }
}

@Injectable()
class BigPayloads {
  readonly sizes: number[] = [];
}

@Controller()
class BigController {
  constructor(@Inject(BigPayloads) private readonly seen: BigPayloads) {}

  @StreamEvent('big.events')
  big(@Payload() data: { text: string }) {
    this.seen.sizes.push(data.text.length);
  }
}

describe('StreamMirror: cross-region replication (own redis-servers)', () => {
  const servers: RedisProcess[] = [];
  const raws: Redis[] = [];
  let a: RedisProcess;
  let b: RedisProcess;
  let rawA: Redis;
  let rawB: Redis;

  const raw = (url: string) => {
    const redis = new Redis(url, { maxRetriesPerRequest: 1 });
    raws.push(redis);
    return redis;
  };

  beforeAll(async () => {
    [a, b] = await Promise.all([RedisProcess.start(), RedisProcess.start()]);
    servers.push(a, b);
    rawA = raw(a.url);
    rawB = raw(b.url);
  });

  afterAll(async () => {
    for (const redis of raws) redis.disconnect();
    await Promise.all(servers.map((s) => s.stop()));
  });

  it("a consumer in region B handles region A's messages (a partitioned topic, found by a glob) once each, in order per key", async () => {
    const prefix = uniquePrefix('mirror');
    const keys = testKeys(prefix);
    const partitioning = { enabled: true, partitionCount: 3 };
    const ordering = { enabled: true, strategy: 'partition' as const, partitionKey: 'key' };
    const producer = new RedisStreamsClient(testConfig(prefix, { connection: { url: a.url }, partitioning, ordering }));
    let app: INestMicroservice | undefined;
    try {
      // Region B: a consumer app whose module also runs the mirror from A (replication in the same configuration).
      const config = testConfig(prefix, {
        connection: { url: b.url },
        partitioning,
        ordering,
        replication: { region: 'B', mirrors: [{ name: 'from-A', source: { region: 'A', connection: { url: a.url } }, topics: ['orders.*'], blockMs: 100, discoveryIntervalMs: 200 }] },
      });
      await lastValueFrom(producer.emit('orders.created', fromA({ n: -1, key: 'warm-up' })));
      const started = await startConsumer(config, [OrdersController], [Received]);
      app = started.app;
      const received = app.get(Received);
      const mirror = app.get(StreamMirror);
      for (let n = 0; n < 60; n++) await lastValueFrom(producer.emit('orders.created', fromA({ n, key: `k${n % 4}` })));
      await waitFor(() => received.messages.length >= 61, { message: 'every message handled in region B', timeoutMs: 15_000 });
      expect(received.messages.map((m) => m.n).sort((x, y) => x - y)).toEqual([-1, ...Array.from({ length: 60 }, (_, n) => n)]);
      for (let k = 0; k < 4; k++) {
        const ofKey = received.messages.filter((m) => m.key === `k${k}`).map((m) => m.n);
        expect(ofKey).toEqual([...ofKey].sort((x, y) => x - y));
      }
      expect(received.messages.every((m) => m.origin === 'A')).toBe(true);
      // Partition by partition: each of A's partition streams went to the same partition stream in B.
      for (let p = 0; p < 3; p++) {
        const sourceIds = (await rawA.xrange(keys.partition('orders.created', p), '-', '+')).map(([id]) => id);
        const copies = await copiesIn(rawB, keys.partition('orders.created', p));
        expect(copies.every((c) => c.origin === 'A')).toBe(true);
        expect(compareCopies(sourceIds, copies.map((c) => c.originId))).toEqual({ lost: 0, duplicated: 0, inOrder: true });
      }
      await waitFor(() => mirror.getStatus().topics.length > 0 && mirror.getStatus().topics.every((t) => t.lag === 0), { message: 'lag 0' });
      const status = mirror.getStatus();
      expect(status.running).toBe(true);
      expect(status.topics.reduce((sum, t) => sum + t.copied, 0)).toBe(61);
      expect(status.topics.map((t) => t.source).sort()).toEqual(
        [0, 1, 2].map((p) => keys.partition('orders.created', p)).filter((k) => status.topics.some((t) => t.source === k)),
      );
    } finally {
      await app?.close();
      await producer.close();
    }
  });

  it('encrypted and claim-checked messages arrive readable (the blob is copied with its entry; the keys are shared)', async () => {
    const prefix = uniquePrefix('mirror-blob');
    const keys = testKeys(prefix);
    const streams = { claimCheckThresholdBytes: 1_024 };
    const encryption = { enabled: true, keys: [{ id: 'k1', key: randomBytes(32).toString('base64') }] };
    const producer = new RedisStreamsClient(testConfig(prefix, { connection: { url: a.url }, streams, encryption }));
    let app: INestMicroservice | undefined;
    try {
      const sizes = [10, 5_000, 20, 70_000, 30];
      for (const size of sizes) await lastValueFrom(producer.emit('big.events', { text: 'x'.repeat(size) }));
      const config = testConfig(prefix, {
        connection: { url: b.url },
        streams,
        encryption,
        replication: { region: 'B', mirrors: [{ name: 'from-A', source: { region: 'A', connection: { url: a.url } }, topics: ['big.events'], blockMs: 100 }] },
      });
      app = (await startConsumer(config, [BigController], [BigPayloads])).app;
      const seen = app.get(BigPayloads);
      await waitFor(() => seen.sizes.length === sizes.length, { message: 'every message handled in region B' });
      expect([...seen.sizes].sort((x, y) => x - y)).toEqual([...sizes].sort((x, y) => x - y)); // handled concurrently
      const sourceIds = (await rawA.xrange(keys.stream('big.events'), '-', '+')).map(([id]) => id);
      const copied = (await rawB.xrange(keys.stream('big.events'), '-', '+')).map(([, f]) => f[f.indexOf('rse.origin.id') + 1]);
      expect(compareCopies(sourceIds, copied)).toEqual({ lost: 0, duplicated: 0, inOrder: true });
      const encodings = (await rawB.xrange(keys.stream('big.events'), '-', '+')).map(([, f]) => f[f.indexOf('enc') + 1]);
      expect(encodings.every((enc) => enc.endsWith('aes256gcm'))).toBe(true); // ciphertext in both regions
      // The copies' blobs are indexed in region B, so its blob sweep keeps them as long as their entries.
      expect(await rawB.zcard(keys.blobIndexOf(keys.stream('big.events')))).toBe(2);
    } finally {
      await app?.close();
      await producer.close();
    }
  });

  it('two mirrors of the same topics at once still copy every entry exactly once (the checkpoint is compare-and-set)', async () => {
    const prefix = uniquePrefix('mirror-twice');
    const keys = testKeys(prefix);
    const stream = keys.stream('twice.events');
    const config = mirrorConfig(prefix, { region: 'B', url: b.url }, [{ region: 'A', url: a.url }], ['twice.events'], { batchSize: 7 });
    const registry = new Registry();
    const first = new StreamMirror({ ...config, observability: { metrics: { prometheus: true, registry } } });
    const second = new StreamMirror(config);
    try {
      const ids = await produce(rawA, stream, 'twice.events', 0, 300);
      await Promise.all([first.start(), second.start()]);
      ids.push(...(await produce(rawA, stream, 'twice.events', 300, 300)));
      await waitFor(async () => (await rawB.xlen(stream)) >= 600 && first.getStatus().topics[0]?.lag === 0, { message: '600 copies', timeoutMs: 15_000 });
      const copies = await copiesIn(rawB, stream);
      expect(compareCopies(ids, copies.map((c) => c.originId))).toEqual({ lost: 0, duplicated: 0, inOrder: true });
      expect(copies).toHaveLength(600);
      await waitFor(() => first.getStatus().topics[0]?.copied === 600, { message: 'the first mirror to know the total' });
      const scrape = await registry.metrics();
      const labels = `mirror="from-A",source_region="A",stream="${stream}"`;
      expect(scrape).toContain(`redis_streams_mirror_copied_messages{${labels}} 600`);
      expect(scrape).toContain(`redis_streams_mirror_lag_messages{${labels}} 0`);
    } finally {
      await Promise.all([first.close(), second.close()]);
    }
  });

  it('active-active across three regions: every region sees every message exactly once, nothing loops back', async () => {
    const c = await RedisProcess.start();
    servers.push(c);
    const rawC = raw(c.url);
    const prefix = uniquePrefix('mirror-mesh');
    const keys = testKeys(prefix);
    const stream = keys.stream('mesh.events');
    const regions = [
      { region: 'A', url: a.url, redis: rawA },
      { region: 'B', url: b.url, redis: rawB },
      { region: 'C', url: c.url, redis: rawC },
    ];
    // Six mirrors: each region copies from both others.
    const mirrors = regions.map((target) => new StreamMirror(mirrorConfig(prefix, target, regions.filter((r) => r !== target), ['mesh.*'])));
    try {
      const born = new Map<string, string[]>();
      for (const [i, r] of regions.entries()) born.set(r.region, await produce(r.redis, stream, 'mesh.events', i * 1000, 100));
      await Promise.all(mirrors.map((m) => m.start()));
      for (const [i, r] of regions.entries()) born.get(r.region)!.push(...(await produce(r.redis, stream, 'mesh.events', i * 1000 + 100, 100)));
      await waitFor(async () => (await Promise.all(regions.map((r) => r.redis.xlen(stream)))).every((len) => len >= 600), { message: '600 entries in every region', timeoutMs: 15_000 });
      // Each mirror reads the 400 copies its source holds from the two other regions, and passes them by.
      const skipped = () => mirrors.flatMap((m) => m.getStatus().topics).reduce((sum, t) => sum + t.skipped, 0);
      await waitFor(() => skipped() === 6 * 400, { message: 'every mirror past the copies in its source' });
      for (const target of regions) {
        expect(await target.redis.xlen(stream)).toBe(600);
        const copies = await copiesIn(target.redis, stream);
        for (const origin of regions.filter((r) => r !== target)) {
          const fromOrigin = copies.filter((c) => c.origin === origin.region).map((c) => c.originId);
          expect(compareCopies(born.get(origin.region)!, fromOrigin)).toEqual({ lost: 0, duplicated: 0, inOrder: true });
        }
        expect(copies.some((c) => c.origin === target.region)).toBe(false);
      }
    } finally {
      await Promise.all(mirrors.map((m) => m.close()));
    }
  });

  it('starts while the source region is down, reports it failing, and copies once it is back', async () => {
    const down = await RedisProcess.start();
    servers.push(down);
    await down.kill();
    const prefix = uniquePrefix('mirror-down');
    const stream = testKeys(prefix).stream('late.events');
    const mirror = new StreamMirror(mirrorConfig(prefix, { region: 'B', url: b.url }, [{ region: 'A', url: down.url }], ['late.*'], { discoveryIntervalMs: 200 }));
    try {
      await mirror.start();
      expect(mirror.getStatus().running).toBe(true);
      await waitFor(() => mirror.getStatus().mirrors[0].failing, { message: 'the mirror to report the source down' });
      expect(mirror.getStatus().mirrors[0].lastError).toMatch(/connect|closed|ECONNREFUSED/i);
      await down.restart();
      const late = raw(down.url);
      const ids = await produce(late, stream, 'late.events', 0, 40);
      await waitFor(async () => (await rawB.xlen(stream)) === 40, { message: 'the copies after the source came back', timeoutMs: 15_000 });
      expect(compareCopies(ids, (await copiesIn(rawB, stream)).map((c) => c.originId))).toEqual({ lost: 0, duplicated: 0, inOrder: true });
      expect(mirror.getStatus().mirrors[0].failing).toBe(false);
    } finally {
      await mirror.close();
    }
  });

  it('counts and reports source entries trimmed away before they were copied (missed), and copies the rest once', async () => {
    const prefix = uniquePrefix('mirror-trimmed');
    const stream = testKeys(prefix).stream('trim.events');
    const config = mirrorConfig(prefix, { region: 'B', url: b.url }, [{ region: 'A', url: a.url }], ['trim.events']);
    const ids = await produce(rawA, stream, 'trim.events', 0, 50);
    const first = new StreamMirror(config);
    await first.start();
    await waitFor(async () => (await rawB.xlen(stream)) === 50, { message: 'the first 50 copies' });
    await first.close();
    // While no mirror runs, 100 more entries arrive and the source's retention keeps only the last 30.
    ids.push(...(await produce(rawA, stream, 'trim.events', 50, 100)));
    await rawA.xtrim(stream, 'MAXLEN', 30);
    const second = new StreamMirror(config);
    try {
      await second.start();
      await waitFor(() => second.getStatus().topics[0]?.missed === 70 && second.getStatus().topics[0]?.lag === 0, { message: '70 missed, caught up' });
      const copies = (await copiesIn(rawB, stream)).map((c) => c.originId);
      expect(copies).toEqual([...ids.slice(0, 50), ...ids.slice(120)]);
    } finally {
      await second.close();
    }
  });

  it('refuses at start a topic partitioned differently in the two regions, naming it', async () => {
    const prefix = uniquePrefix('mirror-layout');
    const keys = testKeys(prefix);
    await rawA.set(keys.layout('layout.events'), JSON.stringify({ epoch: 0, counts: [4] }));
    await rawB.set(keys.layout('layout.events'), JSON.stringify({ epoch: 0, counts: [2] }));
    await produce(rawA, keys.partition('layout.events', 3), 'layout.events', 0, 3);
    const mirror = new StreamMirror(mirrorConfig(prefix, { region: 'B', url: b.url }, [{ region: 'A', url: a.url }], ['layout.*']));
    try {
      const failure = mirror.start();
      await expect(failure).rejects.toThrow(MirrorRefusedError);
      await expect(failure).rejects.toThrow(/"layout\.events" \(source region: partition counts \[4\], this region: partition counts \[2\]\)/);
      expect(await rawB.exists(keys.partition('layout.events', 3))).toBe(0);
    } finally {
      await mirror.close();
    }
  });

  it('the mirror command names a missing option, and refuses a mirror from its own region', async () => {
    const run = async (argv: string[]) => {
      let stderr = '';
      const code = await runCli(argv, { stdout: { write: () => true }, stderr: { write: (t: string) => (stderr += t) }, env: {}, onInterrupt: () => () => undefined });
      return { code, stderr };
    };
    const missing = await run(['--url', b.url, 'mirror', '--source-url', a.url, '--region', 'B', '-t', 'x.*']);
    expect(missing).toEqual({ code: 1, stderr: expect.stringMatching(/--source-region/) });
    const own = await run(['--url', b.url, 'mirror', '--source-url', a.url, '--source-region', 'B', '--region', 'B', '-t', 'x.*']);
    expect(own).toEqual({ code: 1, stderr: expect.stringMatching(/--source-region must differ from --region/) });
  });

  it('invalid replication options fail with every field path named', () => {
    expect(() => new StreamMirror({ replication: { mirrors: [{ name: 'x', source: { region: 'A', connection: { url: 'nope' } }, topics: [], batchSize: 0 }] } })).toThrow(
      InvalidOptionsError,
    );
    try {
      new StreamMirror({ replication: { mirrors: [{ name: 'x', source: { region: 'A', connection: { url: 'nope' } }, topics: [], batchSize: 0 }] } });
    } catch (error) {
      const paths = (error as InvalidOptionsError).violations.map((v) => v.path);
      expect(paths).toEqual(expect.arrayContaining(['replication.mirrors.0.source.connection.url', 'replication.mirrors.0.topics', 'replication.mirrors.0.batchSize']));
    }
    try {
      new StreamMirror({ replication: { region: 'A', mirrors: [{ name: 'x', source: { region: 'A' }, topics: ['t'] }] } });
      throw new Error('accepted a mirror from its own region');
    } catch (error) {
      expect((error as Error).message).toMatch(/replication\.mirrors\.0\.source\.region must not be replication\.region/);
    }
  });
});
