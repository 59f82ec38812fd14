import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Cluster, Redis } from 'ioredis';
import { StreamMirror } from 'nestjs-redis-streams-enterprise';
import { compareCopies, copiesIn, produce } from '../support/mirror-ledger.js';
import { RedisCluster } from '../support/redis-cluster.mjs';
import { RedisProcess } from '../support/redis-process.mjs';
import { uniquePrefix } from '../support/redis.js';
import { testKeys } from '../support/keys.js';
import { TcpProxy } from '../support/tcp-proxy.js';
import { waitFor } from '../support/wait-for.js';

const BIN = fileURLToPath(new URL('../../libs/redis-streams-enterprise/dist/cli/main.js', import.meta.url));

/** The `mirror` command of the built CLI as a child process (so it can be SIGKILLed like a crashed deployment). */
class MirrorProcess {
  stdout = '';
  stderr = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private readonly child: ChildProcess;

  constructor(args: string[]) {
    this.child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child.stdout!.on('data', (chunk: Buffer) => (this.stdout += chunk.toString()));
    this.child.stderr!.on('data', (chunk: Buffer) => (this.stderr += chunk.toString()));
    this.exited = new Promise((resolve) => this.child.once('exit', (code, signal) => resolve({ code, signal })));
  }

  signal(signal: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    this.child.kill(signal);
    return this.exited;
  }
}

/**
 * Exactly-once copying under faults: the mirror is the `mirror` CLI command in a child process; the link from it to
 * the source region goes through a TCP proxy. While a producer writes to region A, the mirror is SIGKILLed and
 * restarted, the link is cut for seconds, region B's redis-server is killed and restarted (AOF), then region A's. At
 * the end every source entry is in region B exactly once, in source order (so per key and per partition).
 */
describe('StreamMirror under faults (mirror process, link, target and source killed)', () => {
  it('SIGKILL of the mirror, a cut link, a target and a source restart lose and duplicate nothing, and keep the order', async () => {
    const [a, b] = await Promise.all([RedisProcess.start({ appendonly: true }), RedisProcess.start({ appendonly: true })]);
    const link = await TcpProxy.start('127.0.0.1', a.port);
    const rawA = new Redis(a.url, { maxRetriesPerRequest: null });
    rawA.on('error', () => undefined);
    const rawB = new Redis(b.url, { maxRetriesPerRequest: null, lazyConnect: true });
    rawB.on('error', () => undefined);
    const prefix = uniquePrefix('mirror-faults');
    const keys = testKeys(prefix);
    const streams = [keys.stream('fx.plain'), ...[0, 1, 2].map((p) => keys.partition('fx.parted', p))];
    await rawA.set(keys.layout('fx.parted'), JSON.stringify({ epoch: 0, counts: [3] }));
    const sourceIds = new Map<string, string[]>(streams.map((s) => [s, []]));
    const args = ['--url', b.url, '--prefix', prefix, 'mirror', '--source-url', link.url, '--source-region', 'A', '--region', 'B', '-t', 'fx.*', '--batch-size', '25'];
    let mirror = new MirrorProcess(args);
    let producing = true;
    let produced = 0;
    // While region A restarts the producer holds (so every entry it counts was acknowledged by A).
    let hold = false;
    let holding = false;
    const producer = (async () => {
      // Paces the load (not an assertion): 4 streams x 10 entries every 25 ms while the faults happen.
      for (let round = 0; producing; round++) {
        holding = hold;
        if (hold) {
          await new Promise((resolve) => setTimeout(resolve, 10));
          continue;
        }
        for (const [i, stream] of streams.entries()) {
          sourceIds.get(stream)!.push(...(await produce(rawA, stream, i === 0 ? 'fx.plain' : 'fx.parted', round * 10, 10, (n) => `k${n % 5}`)));
          produced += 10;
        }
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
    })();
    const copied = async () => {
      if (rawB.status !== 'ready') return 0;
      const lengths = await Promise.all(streams.map((s) => rawB.xlen(s).catch(() => 0)));
      return lengths.reduce((x, y) => x + y, 0);
    };
    try {
      await rawB.connect();
      await waitFor(async () => (await copied()) >= 200, { message: 'the first copies', timeoutMs: 15_000 });
      // 1. The mirror crashes (SIGKILL: no clean shutdown) and is started again.
      expect((await mirror.signal('SIGKILL')).signal).toBe('SIGKILL');
      mirror = new MirrorProcess(args);
      await waitFor(async () => (await copied()) >= produced - 100 && produced > 800, { message: 'copying after the restart', timeoutMs: 15_000 });
      // 2. The link to region A is cut: open connections reset, new ones black-holed for 2 s (holds the fault).
      link.setMode('drop');
      link.setMode('stall');
      await new Promise((resolve) => setTimeout(resolve, 2_000));
      link.setMode('pass');
      await waitFor(async () => (await copied()) >= produced - 100, { message: 'copying after the link came back', timeoutMs: 20_000 });
      // 3. Region B's Redis is killed and restarted (its AOF keeps the copies and the checkpoints).
      await b.kill();
      await b.restart();
      await waitFor(async () => (await copied()) >= produced - 100, { message: 'copying after the target restarted', timeoutMs: 20_000 });
      // 4. Region A's Redis is killed and restarted (AOF) under the mirror's open connections.
      hold = true;
      await waitFor(() => holding, { message: 'the producer to hold' });
      await a.kill();
      await a.restart();
      hold = false;
      await waitFor(async () => (await copied()) >= produced - 100 && !holding, { message: 'copying after the source restarted', timeoutMs: 20_000 });
      producing = false;
      await producer;
      const total = [...sourceIds.values()].reduce((sum, ids) => sum + ids.length, 0);
      await waitFor(async () => (await copied()) >= total, { message: `all ${total} entries copied`, timeoutMs: 20_000 });
      const exit = await mirror.signal('SIGTERM');
      expect(exit.code).toBe(0);
      const result = { lost: 0, duplicated: 0, inOrder: true };
      for (const stream of streams) {
        const compared = compareCopies(sourceIds.get(stream)!, (await copiesIn(rawB, stream)).map((c) => c.originId));
        result.lost += compared.lost;
        result.duplicated += compared.duplicated;
        result.inOrder &&= compared.inOrder;
      }
      expect({ total, ...result }).toEqual({ total: expect.any(Number), lost: 0, duplicated: 0, inOrder: true });
      expect(total).toBeGreaterThan(1_000);
      expect(mirror.stdout).toMatch(/SOURCE\s+TARGET\s+COPIED\s+LAG/);
    } catch (error) {
      throw new Error(`${(error as Error).message}\nmirror stderr:\n${mirror.stderr.slice(-3_000)}`, { cause: error });
    } finally {
      producing = false;
      await producer.catch(() => undefined);
      await mirror.signal('SIGKILL');
      rawA.disconnect();
      rawB.disconnect();
      await link.close();
      await Promise.all([a.stop(), b.stop()]);
    }
  }, 90_000);

  it('copies from a standalone Redis into a Redis Cluster and back (partitions into their slots), exactly once', async () => {
    const [a, cluster] = await Promise.all([RedisProcess.start(), RedisCluster.start({ masters: 3 })]);
    const rawA = new Redis(a.url, { maxRetriesPerRequest: 1 });
    const rawB = new Cluster(cluster.nodes, { redisOptions: { maxRetriesPerRequest: 1 } });
    const prefix = uniquePrefix('mirror-cluster');
    const keys = testKeys(prefix);
    const streams = [0, 1, 2, 3].map((p) => keys.partition('cl.events', p));
    await rawA.set(keys.layout('cl.events'), JSON.stringify({ epoch: 0, counts: [4] }));
    // And back: region A mirrors a topic born in the Cluster (read per stream, without blocking, on a Cluster source).
    const back = new StreamMirror({
      connection: { url: a.url },
      streams: { keyPrefix: prefix },
      replication: { region: 'A', mirrors: [{ name: 'from-B', source: { region: 'B', connection: { cluster: { nodes: cluster.nodes } } }, topics: ['cl.*'], blockMs: 100 }] },
    });
    const mirror = new StreamMirror({
      connection: { cluster: { nodes: cluster.nodes } },
      streams: { keyPrefix: prefix },
      replication: { region: 'B', mirrors: [{ name: 'from-A', source: { region: 'A', connection: { url: a.url } }, topics: ['cl.events'], blockMs: 100, discoveryIntervalMs: 200 }] },
    });
    try {
      const ids = new Map<string, string[]>();
      for (const stream of streams) ids.set(stream, await produce(rawA, stream, 'cl.events', 0, 50));
      await mirror.start();
      for (const stream of streams) ids.get(stream)!.push(...(await produce(rawA, stream, 'cl.events', 50, 50)));
      await waitFor(() => mirror.getStatus().topics.length === 4 && mirror.getStatus().topics.every((t) => t.copied === 100 && t.lag === 0), {
        message: '100 copies per partition',
        timeoutMs: 15_000,
      });
      for (const stream of streams) {
        expect(compareCopies(ids.get(stream)!, (await copiesIn(rawB, stream)).map((c) => c.originId))).toEqual({ lost: 0, duplicated: 0, inOrder: true });
      }
      expect(JSON.parse((await rawB.get(keys.layout('cl.events')))!)).toEqual({ epoch: 0, counts: [4] });
      const born = await produce(rawB, keys.stream('cl.replies'), 'cl.replies', 0, 60);
      await back.start();
      await waitFor(async () => (await rawA.xlen(keys.stream('cl.replies'))) === 60 && back.getStatus().topics.every((t) => t.lag === 0), {
        message: '60 copies back in region A',
      });
      expect(compareCopies(born, (await copiesIn(rawA, keys.stream('cl.replies'))).map((c) => c.originId))).toEqual({ lost: 0, duplicated: 0, inOrder: true });
      // What A holds of cl.events are its own entries (skipped: copies of them in B carry origin A): nothing came back.
      expect(await rawA.xlen(streams[0])).toBe(100);
    } finally {
      await back.close();
      await mirror.close();
      rawA.disconnect();
      rawB.disconnect();
      await Promise.all([a.stop(), cluster.stop()]);
    }
  }, 60_000);
});
