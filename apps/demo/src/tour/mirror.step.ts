import { Redis } from 'ioredis';
import { PartitioningManager, StreamMirror } from 'nestjs-redis-streams-enterprise';
import { ThrowawayRedis } from '../redis-server.process.js';
import { fmt } from '../summary.js';
import { ACCOUNTS_MOVED } from './ordering.step.js';
import { errorText, StepReport, waitUntil, type Tour } from './tour-checks.js';

const CAUGHT_UP_TIMEOUT_MS = 20_000;

/**
 * Step 7: cross-region replication. The tour's Redis plays region "us"; a second throw-away redis-server plays region
 * "eu". A `StreamMirror` copies step 1's partitioned topic from us into eu, partition by partition, and the step checks
 * that every entry of every partition arrived exactly once, in the source's order, each copy naming its origin.
 */
export async function runMirrorStep(tour: Tour): Promise<StepReport> {
  const report = new StepReport('tour 7 mirror');
  let eu: ThrowawayRedis;
  try {
    eu = await ThrowawayRedis.start();
  } catch (error) {
    report.row('second region', `skipped: no redis-server to start (${errorText(error)})`);
    return report;
  }
  const euRedis = new Redis(eu.url, { maxRetriesPerRequest: 1 });
  const mirror = new StreamMirror({
    connection: { url: eu.url },
    streams: { keyPrefix: tour.keyPrefix },
    replication: {
      region: 'eu',
      mirrors: [{ name: 'from-us', source: { region: 'us', connection: { url: tour.redisUrl } }, topics: ['accounts.*'], blockMs: 100 }],
    },
  });
  try {
    tour.log(`Tour 7: mirror "accounts.*" (${ACCOUNTS_MOVED}, accounts.opened) from region us (the tour's Redis) into region eu (a second redis-server on port ${eu.port})`);
    const started = performance.now();
    await mirror.start();
    const caughtUp = await waitUntil(async () => {
      const topics = mirror.getStatus().topics;
      return topics.length > 0 && topics.every((t) => t.lag === 0) && (await sameLengths(tour.redis, euRedis, topics));
    }, CAUGHT_UP_TIMEOUT_MS);
    const tookMs = performance.now() - started;
    const topics = mirror.getStatus().topics;

    let lost = 0;
    let duplicated = 0;
    let outOfOrder = 0;
    let copies = 0;
    for (const topic of topics) {
      const sourceIds = (await tour.redis.xrange(topic.source, '-', '+')).map(([id]) => id);
      const copied = (await euRedis.xrange(topic.target, '-', '+')).map(([, fields]) => ({
        origin: fields[fields.lastIndexOf('rse.origin') + 1],
        id: fields[fields.lastIndexOf('rse.origin.id') + 1],
      }));
      copies += copied.length;
      const copiedIds = copied.filter((c) => c.origin === 'us').map((c) => c.id);
      const unique = new Set(copiedIds);
      duplicated += copiedIds.length - unique.size;
      lost += sourceIds.filter((id) => !unique.has(id)).length;
      outOfOrder += copiedIds.filter((id, i) => i > 0 && sourceIds.indexOf(id) < sourceIds.indexOf(copiedIds[i - 1])).length;
    }
    const partitions = (await tour.producer.get(PartitioningManager).getPartitionStats(ACCOUNTS_MOVED)).length;
    tour.log(
      `  ${topics.length} streams mirrored (${partitions} partitions each): ${fmt.int(copies)} copies in ${fmt.ms(tookMs)}; ` +
        `lost ${lost}, duplicated ${duplicated}, out of order ${outOfOrder}; each copy carries rse.origin=us and its source id`,
    );
    report.row(
      'us -> eu copies',
      `${fmt.int(copies)} in ${fmt.ms(tookMs)}, lost ${lost}, duplicated ${duplicated}, out of order ${outOfOrder}, lag ${topics.map((t) => t.lag).join('/')}`,
      caughtUp && copies > 0 && lost === 0 && duplicated === 0 && outOfOrder === 0,
      'the mirror did not copy every entry of every partition once, in order',
    );
  } finally {
    await mirror.close();
    euRedis.disconnect();
    await eu.stop();
  }
  return report;
}

async function sameLengths(source: Redis, target: Redis, topics: readonly { source: string; target: string }[]): Promise<boolean> {
  for (const topic of topics) if ((await source.xlen(topic.source)) !== (await target.xlen(topic.target))) return false;
  return true;
}
