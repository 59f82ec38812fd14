import { RedisStreamCommands, type StreamCommands } from '../../libs/redis-streams-enterprise/src/connection/stream-commands.js';
import { LaneAcks } from '../../libs/redis-streams-enterprise/src/transport/lane-acks.js';
import { testKeys } from '../support/keys.js';
import { cleanupPrefix, rawRedis, uniquePrefix, type RawRedis } from '../support/redis.js';

/**
 * Ordered lanes acknowledge in lane order while the next handler already runs (transport/lane-acks.ts). Against a
 * real Redis, with XACK failures injected in the command port: a later entry's ack never reaches Redis before an
 * earlier one's, and once the partition is lost every later ack of that ownership period is abandoned, so the next
 * owner finds the lane's entries pending from the first unacknowledged one on.
 */
describe('acks of an ordered lane (real Redis)', () => {
  const prefix = uniquePrefix('lane-acks');
  const stream = testKeys(prefix).stream('lane.jobs');
  let redis: RawRedis;
  let ids: string[];

  /** The real port, with the next `failNext` XACKs failing as a dropped connection would, and every XACK logged. */
  function flakyPort(): StreamCommands & { failNext: number; sent: string[][] } {
    const real = new RedisStreamCommands(redis as never);
    const port = Object.create(real) as StreamCommands & { failNext: number; sent: string[][] };
    port.failNext = 0;
    port.sent = [];
    port.ack = async (s: string, group: string, ackIds: readonly string[]) => {
      port.sent.push([...ackIds]);
      if (port.failNext > 0) {
        port.failNext--;
        throw new Error('Connection is closed.');
      }
      return real.ack(s, group, ackIds);
    };
    port.isClosed = () => false;
    return port;
  }

  async function pendingIds(): Promise<string[]> {
    const rows = (await redis.xpending(stream, 'g', '-', '+', 100)) as [string, ...unknown[]][];
    return rows.map((r) => r[0]);
  }

  beforeEach(async () => {
    redis ??= rawRedis();
    await redis.del(stream);
    await redis.xgroup('CREATE', stream, 'g', '$', 'MKSTREAM');
    for (let n = 0; n < 5; n++) await redis.xadd(stream, '*', 'data', JSON.stringify({ n }));
    const read = (await redis.xreadgroup('GROUP', 'g', 'c', 'COUNT', 10, 'STREAMS', stream, '>')) as [string, [string, string[]][]][];
    ids = read[0][1].map(([id]) => id);
  });

  afterAll(async () => {
    await cleanupPrefix(redis, prefix);
    redis.disconnect();
  });

  it('an ack that fails is sent again first; the acks queued meanwhile follow it, never before it', async () => {
    const port = flakyPort();
    const acks = new LaneAcks(port, 'g', () => undefined, () => undefined);
    port.failNext = 2;
    const owned = () => true;
    const results = ids.map((id) => acks.ack({ stream, id, lane: 'k', lease: 'L1', stillOwned: owned }));
    expect(await Promise.all(results)).toEqual([true, true, true, true, true]);
    // Each XACK sent covers a prefix-ordered run of the lane: no id is sent before every earlier one was confirmed.
    const confirmedOrder = port.sent.slice(2).flat();
    expect(confirmedOrder).toEqual(ids);
    expect(port.sent[0]).toEqual(port.sent[1]); // the failed one again, alone
    expect(await pendingIds()).toEqual([]);
  });

  it('a partition lost while an ack fails abandons it and every later ack of that ownership period', async () => {
    const port = flakyPort();
    const acks = new LaneAcks(port, 'g', () => undefined, () => undefined);
    await acks.ack({ stream, id: ids[0], lane: 'k', lease: 'L1', stillOwned: () => true });
    port.failNext = 100;
    let owned = true;
    const stillOwned = () => owned;
    const second = acks.ack({ stream, id: ids[1], lane: 'k', lease: 'L1', stillOwned });
    const third = acks.ack({ stream, id: ids[2], lane: 'k', lease: 'L1', stillOwned });
    await new Promise((resolve) => setTimeout(resolve, 300));
    owned = false;
    expect(await Promise.all([second, third])).toEqual([false, false]);
    port.failNext = 0;
    // A handler of the lost period that finishes later: its ack must not overtake the abandoned ones.
    expect(await acks.ack({ stream, id: ids[3], lane: 'k', lease: 'L1', stillOwned: () => true })).toBe(false);
    expect(await pendingIds()).toEqual(ids.slice(1));
    // Another lane, or the same lane in a new ownership period (new lease), acknowledges as usual.
    expect(await acks.ack({ stream, id: ids[1], lane: 'k', lease: 'L2', stillOwned: () => true })).toBe(true);
    expect(await acks.ack({ stream, id: ids[4], lane: 'other', lease: 'L1', stillOwned: () => true })).toBe(true);
    expect(await pendingIds()).toEqual([ids[2], ids[3]]);
  });
});
