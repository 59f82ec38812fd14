/** Baseline producer: XADD of the library's wire format (same fields) with plain ioredis. */
import { Redis } from 'ioredis';
import { randomUUID } from 'node:crypto';
import { libraryFields, makePayload, type ProducerParams } from '../protocol.js';
import { runProducerWorker, type ProducerDriver } from './producer-harness.js';

async function init(params: ProducerParams): Promise<ProducerDriver> {
  const redis = new Redis(params.redisUrl, { lazyConnect: true, enableAutoPipelining: params.autoPipelining });
  await redis.connect();
  return {
    sendOne: (seq, pad) =>
      redis.xadd(params.stream, '*', ...libraryFields(params.pattern, randomUUID(), JSON.stringify(makePayload(seq, pad)))),
    async close() {
      await redis.quit();
    },
  };
}

void runProducerWorker(init);
