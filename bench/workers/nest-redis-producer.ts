/**
 * Peer producer: a `ClientProxy` of Nest's built-in Redis transport, `emit()` awaited with lastValueFrom (it
 * completes when Redis answered the PUBLISH), as an application would.
 */
import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import { ClientProxyFactory, Transport, type ClientProxy } from '@nestjs/microservices';
import { lastValueFrom } from 'rxjs';
import { makePayload, type ProducerParams } from '../protocol.js';
import { runProducerWorker, type ProducerDriver } from './producer-harness.js';

// Its "Connected to Redis" log line; the consumers run with logger: false too.
Logger.overrideLogger(false);

async function init(params: ProducerParams): Promise<ProducerDriver> {
  const url = new URL(params.redisUrl);
  const client: ClientProxy = ClientProxyFactory.create({
    transport: Transport.REDIS,
    options: { host: url.hostname, port: Number(url.port), ...(params.autoPipelining ? { enableAutoPipelining: true } : {}) },
  });
  await client.connect();
  return {
    sendOne: (seq, pad) => lastValueFrom(client.emit(params.pattern, makePayload(seq, pad)), { defaultValue: undefined }),
    async close() {
      await client.close();
    },
  };
}

void runProducerWorker(init);
