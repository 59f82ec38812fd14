/**
 * Producer of the ordering scenarios: message `seq` carries a key (keyIndexOf) and its position `n` within the key,
 * sent in seq order with a bounded number in flight (producer-harness.ts).
 *   raw      XADD of the library's fields (plus `key`) to partition stream rawPartitionOf(key) (one stream for global)
 *   library  lastValueFrom(RedisStreamsClient.emit(...)) with the consumers' ordering/partitioning configuration: the
 *            client routes by the payload field `key` (partition) or stamps a sequence number by script (global);
 *            `params.features` 'none' is the plain library, 'all' adds schema validation and an idempotency key per message
 */
import { Redis } from 'ioredis';
import { randomUUID } from 'node:crypto';
import { lastValueFrom } from 'rxjs';
import { libraryFields } from '../protocol.js';
import { featureConfig, idempotencyKeyOf, orderedPayload, rawPartitionOf, type OrderedProducerParams } from './ordering-common.js';
import { runProducerWorker, type ProducerDriver } from './producer-harness.js';

async function rawDriver(params: OrderedProducerParams): Promise<ProducerDriver> {
  const redis = new Redis(params.redisUrl, { lazyConnect: true, enableAutoPipelining: params.autoPipelining });
  await redis.connect();
  const streams = params.rawStreams;
  return {
    sendOne(seq, pad) {
      const payload = orderedPayload(seq, params, pad);
      const stream = streams.length === 1 ? streams[0] : streams[rawPartitionOf(payload.key, streams.length)];
      return redis.xadd(stream, '*', ...libraryFields(params.pattern, randomUUID(), JSON.stringify(payload)), 'key', payload.key);
    },
    async close() {
      await redis.quit();
    },
  };
}

async function libraryDriver(params: OrderedProducerParams): Promise<ProducerDriver> {
  // Loaded only here, so the raw producer process loads no library code.
  await import('reflect-metadata');
  const { RedisStreamsClient, RedisStreamsRecord } = await import('nestjs-redis-streams-enterprise');
  const client = new RedisStreamsClient({
    connection: { url: params.redisUrl, ...(params.autoPipelining ? { options: { enableAutoPipelining: true } } : {}) },
    streams: { keyPrefix: params.keyPrefix },
    ...featureConfig(params),
  });
  await client.connect();
  // All features: each message carries an idempotency key (publish stored once; consumers record it as processed).
  const keyed = params.features === 'all';
  return {
    sendOne: (seq, pad) => {
      const payload = orderedPayload(seq, params, pad);
      return lastValueFrom(client.emit(params.pattern, keyed ? new RedisStreamsRecord(payload, { idempotencyKey: idempotencyKeyOf(seq) }) : payload));
    },
    async close() {
      await client.close();
    },
  };
}

// The orchestrator passes OrderedProducerParams (a superset of ProducerParams) as the worker's JSON argument.
void runProducerWorker((params) => (params.mode === 'raw' ? rawDriver(params as OrderedProducerParams) : libraryDriver(params as OrderedProducerParams)));
