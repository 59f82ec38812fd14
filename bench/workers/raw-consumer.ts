/**
 * Baseline consumer: the plain ioredis loop a careful developer would write, on one connection:
 *   XREADGROUP GROUP g c COUNT <batchSize> BLOCK <ms> STREAMS s >   -> handle the batch (JSON.parse, count)
 *   -> one multi-id XACK for the batch, not awaited, so it travels ahead of the next XREADGROUP on the socket.
 */
import { Redis } from 'ioredis';
import { hostname } from 'node:os';
import { GROUP, type ConsumerParams, type DeliveryCounter } from '../protocol.js';
import { runConsumerWorker, type ConsumerDriver } from './consumer-harness.js';

type ReadReply = [stream: string, entries: [id: string, fields: string[] | null][]][] | null;

async function init(params: ConsumerParams, counter: DeliveryCounter): Promise<ConsumerDriver> {
  const redis = new Redis(params.redisUrl, {
    lazyConnect: true,
    maxRetriesPerRequest: null,
    enableAutoPipelining: params.autoPipelining,
  });
  await redis.connect();
  try {
    await redis.xgroup('CREATE', params.stream, GROUP, '0', 'MKSTREAM');
  } catch (error) {
    // An existing group is fine (same start id '0' as the library's default groupStartId).
    if (!String((error as Error).message).startsWith('BUSYGROUP')) throw error;
  }
  const consumerName = `${hostname()}-${process.pid}-raw`;
  let running = false;
  let acked = 0;
  let loop: Promise<void> | undefined;
  const pendingAcks = new Set<Promise<unknown>>();

  const handleBatch = (reply: ReadReply): string[] => {
    const ids: string[] = [];
    for (const [, entries] of reply ?? []) {
      for (const [id, fields] of entries) {
        ids.push(id);
        if (!fields) continue;
        for (let i = 0; i + 1 < fields.length; i += 2) {
          if (fields[i] !== 'data') continue;
          const payload = JSON.parse(fields[i + 1]) as { seq: number; sentAt: number };
          counter.record(payload.seq, payload.sentAt);
          break;
        }
      }
    }
    return ids;
  };

  const run = async () => {
    while (running) {
      let reply: ReadReply;
      try {
        reply = (await redis.xreadgroup(
          'GROUP', GROUP, consumerName, 'COUNT', params.batchSize, 'BLOCK', params.blockMs, 'STREAMS', params.stream, '>',
        )) as ReadReply;
      } catch (error) {
        if (!running) return;
        throw error;
      }
      const ids = handleBatch(reply);
      if (ids.length === 0) continue;
      const ack: Promise<unknown> = redis.xack(params.stream, GROUP, ...ids).then(() => {
        acked += ids.length;
      });
      pendingAcks.add(ack);
      void ack.finally(() => pendingAcks.delete(ack));
    }
  };

  return {
    async start() {
      running = true;
      loop = run();
      return undefined;
    },
    ackedCount: () => acked,
    async stop() {
      running = false;
      await Promise.all([...pendingAcks]);
      redis.disconnect(); // interrupts a pending BLOCK
      await loop?.catch(() => undefined);
    },
  };
}

void runConsumerWorker(init);
