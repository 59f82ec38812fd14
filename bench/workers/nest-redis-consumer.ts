/**
 * Peer consumer: Nest's built-in Redis transport (`Transport.REDIS`, pub/sub, nothing stored), as an application
 * would write it: a microservice with one counting @EventPattern handler (logger off). The channel is the run's
 * pattern. Pub/sub has no acknowledgement: a message counts as done when its handler ran.
 */
import 'reflect-metadata';
import { Controller, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { EventPattern, Payload, Transport, type MicroserviceOptions } from '@nestjs/microservices';
import { Redis } from 'ioredis';
import { sleep, type BenchPayload, type ConsumerParams, type DeliveryCounter } from '../protocol.js';
import { runConsumerWorker, type ConsumerDriver } from './consumer-harness.js';

let counter: DeliveryCounter | undefined;

async function init(params: ConsumerParams, deliveries: DeliveryCounter): Promise<ConsumerDriver> {
  counter = deliveries;
  // The pattern is the run's channel, known only now: the controller is declared here.
  @Controller()
  class BenchController {
    @EventPattern<string>(params.pattern)
    onEvent(@Payload() payload: BenchPayload): void {
      counter?.record(payload.seq, payload.sentAt);
    }
  }
  @Module({ controllers: [BenchController] })
  class BenchModule {}

  const url = new URL(params.redisUrl);
  const app = await NestFactory.createMicroservice<MicroserviceOptions>(BenchModule, {
    transport: Transport.REDIS,
    options: { host: url.hostname, port: Number(url.port), ...(params.autoPipelining ? { enableAutoPipelining: true } : {}) },
    logger: false,
  });
  await app.init();
  return {
    async start() {
      await app.listen();
      // listen() resolves before Redis confirmed SUBSCRIBE; wait for it so start-up is not counted as loss.
      const probe = new Redis(params.redisUrl, { lazyConnect: true });
      await probe.connect();
      try {
        for (let i = 0; i < 500; i++) {
          const [, subscribers] = (await probe.pubsub('NUMSUB', params.pattern)) as [string, number];
          if (Number(subscribers) > 0) return [params.pattern];
          await sleep(10);
        }
        throw new Error(`no subscriber on ${params.pattern} after 5 s`);
      } finally {
        probe.disconnect();
      }
    },
    ackedCount: () => deliveries.unique,
    async stop() {
      await app.close();
    },
  };
}

void runConsumerWorker(init);
