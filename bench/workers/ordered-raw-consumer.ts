/**
 * Baseline consumer of the ordering scenarios: the raw ioredis loop of raw-consumer.ts over a static share of the
 * partition streams (no leases, no failover), on one connection:
 *   XREADGROUP GROUP g c COUNT <batchSize> BLOCK <ms> STREAMS s1..sN > .. >  -> handle each batch in stream order
 *   -> one multi-id XACK per stream, not awaited.
 * Handling a batch synchronously in stream order keeps per-key order by construction, so the order check here is a
 * check of the checker.
 */
import { Redis } from 'ioredis';
import { hostname } from 'node:os';
import { GROUP } from '../protocol.js';
import { runOrderedConsumer, type OrderedConsumerDriver, type OrderedConsumerParams, type OrderedPayload, type RecordDelivery } from './ordering-common.js';

type ReadReply = [stream: string, entries: [id: string, fields: string[] | null][]][] | null;

async function init(params: OrderedConsumerParams, record: RecordDelivery): Promise<OrderedConsumerDriver> {
  const streams = [...params.rawStreams];
  const redis = new Redis(params.redisUrl, { lazyConnect: true, maxRetriesPerRequest: null, enableAutoPipelining: params.autoPipelining });
  await redis.connect();
  for (const stream of streams) {
    try {
      await redis.xgroup('CREATE', stream, GROUP, '0', 'MKSTREAM');
    } catch (error) {
      // An existing group is fine (same start id '0' as the library consumer's groupStartId).
      if (!String((error as Error).message).startsWith('BUSYGROUP')) throw error;
    }
  }
  const consumerName = `${hostname()}-${process.pid}-raw`;
  let running = false;
  let acked = 0;
  let loop: Promise<void> | undefined;
  const pendingAcks = new Set<Promise<unknown>>();

  const run = async () => {
    const ids = streams.map(() => '>');
    while (running) {
      let reply: ReadReply;
      try {
        reply = (await redis.xreadgroup('GROUP', GROUP, consumerName, 'COUNT', params.batchSize, 'BLOCK', params.blockMs, 'STREAMS', ...streams, ...ids)) as ReadReply;
      } catch (error) {
        if (!running) return;
        throw error;
      }
      for (const [stream, entries] of reply ?? []) {
        const handled: string[] = [];
        for (const [id, fields] of entries) {
          handled.push(id);
          if (!fields) continue;
          for (let i = 0; i + 1 < fields.length; i += 2) {
            if (fields[i] !== 'data') continue;
            record(JSON.parse(fields[i + 1]) as OrderedPayload);
            break;
          }
        }
        if (handled.length === 0) continue;
        const ack: Promise<unknown> = redis.xack(stream, GROUP, ...handled).then(() => {
          acked += handled.length;
        });
        pendingAcks.add(ack);
        void ack.finally(() => pendingAcks.delete(ack));
      }
    }
  };

  return {
    async start() {
      running = true;
      loop = run();
    },
    settle: async () => [...streams].sort(),
    owned: () => [...streams].sort(),
    ackedCount: () => acked,
    async stop() {
      running = false;
      await Promise.all([...pendingAcks]);
      redis.disconnect(); // interrupts a pending BLOCK
      await loop?.catch(() => undefined);
    },
  };
}

void runOrderedConsumer(init);
