// A consumer in its own process, for tests that kill it with SIGKILL. Plain JavaScript on the built library
// (npm test builds it first), so the process is a real Node process like a user's, not a jest worker.
// env: REDIS_URL, PREFIX, GROUP, PATTERN, HANDLER_MS (time each message takes), CONCURRENCY, CLAIM_IDLE_MS
import 'reflect-metadata';
import { Controller, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Ctx, EventPattern, Payload } from '@nestjs/microservices';
import { Redis } from 'ioredis';
import { RedisStreamsServer } from '../../libs/redis-streams-enterprise/dist/index.js';

const env = process.env;
const processedKey = `${env.PREFIX}:test:processed`;
const recorder = new Redis(env.REDIS_URL);

class JobsController {
  async handle(data, ctx) {
    const handlerMs = Number(env.HANDLER_MS ?? 0);
    if (handlerMs > 0) await new Promise((resolve) => setTimeout(resolve, handlerMs));
    // The side effect whose count the test checks: one list element per successful handling.
    await recorder.rpush(processedKey, `${data.n}:${ctx.getDeliveryCount()}`);
  }
}
Payload()(JobsController.prototype, 'handle', 0);
Ctx()(JobsController.prototype, 'handle', 1);
EventPattern(env.PATTERN)(JobsController.prototype, 'handle', Object.getOwnPropertyDescriptor(JobsController.prototype, 'handle'));
Controller()(JobsController);

class AppModule {}
Module({ controllers: [JobsController] })(AppModule);

const server = new RedisStreamsServer({
  connection: { url: env.REDIS_URL },
  streams: { keyPrefix: env.PREFIX },
  consumer: {
    group: env.GROUP,
    concurrency: Number(env.CONCURRENCY ?? 8),
    batchSize: Number(env.CONCURRENCY ?? 8),
    blockMs: 200,
    claimIdleMs: Number(env.CLAIM_IDLE_MS ?? 1_000),
    reclaimIntervalMs: 100,
  },
});
const app = await NestFactory.createMicroservice(AppModule, { strategy: server, logger: ['error'] });
app.enableShutdownHooks();
await app.listen();
process.send?.({ listening: server.config.consumer.consumerName });
