/** Library producer: RedisStreamsClient.emit(), awaited with lastValueFrom, as an application would. */
import 'reflect-metadata';
import { RedisStreamsClient } from 'nestjs-redis-streams-enterprise';
import { lastValueFrom } from 'rxjs';
import { makePayload, type ProducerParams } from '../protocol.js';
import { runProducerWorker, type ProducerDriver } from './producer-harness.js';

async function init(params: ProducerParams): Promise<ProducerDriver> {
  const client = new RedisStreamsClient({
    connection: { url: params.redisUrl, ...(params.autoPipelining ? { options: { enableAutoPipelining: true } } : {}) },
    streams: { keyPrefix: params.keyPrefix },
  });
  await client.connect();
  return {
    sendOne: (seq, pad) => lastValueFrom(client.emit(params.pattern, makePayload(seq, pad))),
    async close() {
      await client.close();
    },
  };
}

void runProducerWorker(init);
