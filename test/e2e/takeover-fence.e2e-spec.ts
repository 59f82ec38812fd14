import type { Logger } from '@nestjs/common';
import type { DeliveredEntry } from '../../libs/redis-streams-enterprise/src/connection/redis-replies.js';
import { defineScripts } from '../../libs/redis-streams-enterprise/src/connection/scripts.js';
import { PartitionTakeover } from '../../libs/redis-streams-enterprise/src/consumer/partition-takeover.js';
import type { OrderedDispatcher } from '../../libs/redis-streams-enterprise/src/ordering/ordered-dispatcher.js';
import { testKeys } from '../support/keys.js';
import { cleanupPrefix, rawRedis, uniquePrefix, type RawRedis } from '../support/redis.js';

const GROUP = 'svc';

/**
 * A consumer that lost a partition's lease (it stalled, or its lease lapsed while Redis restarted) but has not noticed
 * yet may still run a takeover round for it (after a failed read, or its periodic sweep). Its claims must be fenced by
 * the lease like its commits: otherwise it takes the entries the new owner is handling, the new owner's commits of
 * them are refused ("gone"), the new owner goes on with the key's later entries, and the stolen ones come back only
 * through a later sweep, after them. Found by the cluster soak (seed 7): a key's seq 338 committed after its seq 341,
 * the entry's delivery count jumping from 2 (new owner) to 4 (new owner again) over the former owner's 3.
 */
describe('taking over a partition is fenced by its lease (real Redis)', () => {
  const prefix = uniquePrefix('takeover-fence');
  const keys = testKeys(prefix);
  const stream = keys.partition('fence.jobs', 0);
  const lease = keys.leaseOf(stream, GROUP);
  let redis: RawRedis;
  let ids: string[];

  beforeAll(async () => {
    redis = rawRedis();
    await redis.xgroup('CREATE', stream, GROUP, '0', 'MKSTREAM');
    ids = [];
    for (let n = 0; n < 3; n++) ids.push(String(await redis.xadd(stream, '*', 'n', String(n))));
    // The new owner read them and is handling them.
    await redis.xreadgroup('GROUP', GROUP, 'new-owner', 'COUNT', 10, 'STREAMS', stream, '>');
  });

  afterAll(async () => {
    await cleanupPrefix(redis, prefix);
    redis.disconnect();
  });

  /** A takeover of the former owner, with a dispatcher that records what it is handed. */
  function formerOwner(): { takeover: PartitionTakeover; pushed: string[]; warnings: string[] } {
    const pushed: string[] = [];
    const warnings: string[] = [];
    const dispatcher = {
      has: () => true,
      room: () => 100,
      push: (_stream: string, entries: readonly DeliveredEntry[]) => pushed.push(...entries.map((e) => e.id)),
    } as unknown as OrderedDispatcher;
    const takeover = new PartitionTakeover({
      config: { consumer: { group: GROUP, consumerName: 'old-owner' }, partitioning: { sessionTimeoutMs: 60_000 } } as never,
      command: defineScripts(redis as never),
      keys,
      dispatcher,
      onDeleted: () => undefined,
      owned: () => [stream],
      logger: { warn: (message: string) => warnings.push(message), log: () => undefined } as unknown as Logger,
    });
    return { takeover, pushed, warnings };
  }

  async function owners(): Promise<Record<string, number>> {
    const summary = (await redis.xpending(stream, GROUP)) as [number, string, string, [string, string][] | null];
    return Object.fromEntries((summary[3] ?? []).map(([name, count]) => [name, Number(count)]));
  }

  it('a former owner claims nothing from the new owner, on assignment or after a failed read', async () => {
    await redis.set(lease, 'new-owner|7');
    const { takeover, pushed, warnings } = formerOwner();
    takeover.begin(stream, 'old-owner|6');
    await takeover.round();
    takeover.afterFailedRead([stream], new Error('Connection is closed.'));
    await takeover.round();
    expect(pushed).toEqual([]);
    expect(await owners()).toEqual({ 'new-owner': 3 });
    // Still being taken over (so never read) until the coordinator revokes it; said once.
    expect(takeover.has(stream)).toBe(true);
    expect(warnings.filter((w) => w.includes('lease passed'))).toHaveLength(1);
    takeover.end(stream);
    expect(takeover.has(stream)).toBe(false);
  });

  it('the holder of the lease takes over everything pending, in id order', async () => {
    await redis.set(lease, 'old-owner|6');
    const { takeover, pushed } = formerOwner();
    takeover.begin(stream, 'old-owner|6');
    await takeover.round();
    expect(pushed).toEqual(ids);
    expect(await owners()).toEqual({ 'old-owner': 3 });
    expect(takeover.has(stream)).toBe(false);
  });
});
