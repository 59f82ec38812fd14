/**
 * Library consumer: a Nest microservice with RedisStreamsServer as its strategy and one counting @EventPattern
 * handler per pattern, exactly as an application would write it (logger off).
 */
import 'reflect-metadata';
import { Controller, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { EventPattern, Payload, type MicroserviceOptions } from '@nestjs/microservices';
import { RedisStreamsServer } from 'nestjs-redis-streams-enterprise';
import { DRAIN_PATTERN, EVENT_PATTERN, GROUP, type BenchPayload, type ConsumerParams, type DeliveryCounter } from '../protocol.js';
import { runConsumerWorker, type ConsumerDriver } from './consumer-harness.js';

let counter: DeliveryCounter | undefined;

@Controller()
class BenchController {
  @EventPattern<string>(EVENT_PATTERN)
  onEvent(@Payload() payload: BenchPayload): void {
    counter?.record(payload.seq, payload.sentAt);
  }

  @EventPattern<string>(DRAIN_PATTERN)
  onDrain(@Payload() payload: BenchPayload): void {
    counter?.record(payload.seq, payload.sentAt);
  }
}

@Module({ controllers: [BenchController] })
class BenchModule {}

async function init(params: ConsumerParams, deliveries: DeliveryCounter): Promise<ConsumerDriver> {
  counter = deliveries;
  const server = new RedisStreamsServer({
    connection: { url: params.redisUrl, ...(params.autoPipelining ? { options: { enableAutoPipelining: true } } : {}) },
    streams: { keyPrefix: params.keyPrefix },
    consumer: {
      group: GROUP,
      groupStartId: '0',
      batchSize: params.batchSize,
      concurrency: params.concurrency,
      blockMs: params.blockMs,
      patterns: [params.pattern],
      shutdownTimeoutMs: 5_000,
    },
  });
  const app = await NestFactory.createMicroservice<MicroserviceOptions>(BenchModule, { strategy: server, logger: false });
  await app.init();
  return {
    async start() {
      await app.listen();
      return (await server.getStatus()).streams.map((s) => s.stream);
    },
    ackedCount: () => server.getMetrics().acked,
    async stop() {
      await app.close();
    },
  };
}

void runConsumerWorker(init);
