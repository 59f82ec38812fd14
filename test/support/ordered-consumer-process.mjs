// A consumer of an ordered, partitioned topic in its own process, for tests that kill it. Plain JavaScript on the
// built library (npm test builds it first).
// env:
//   REDIS_URL, PREFIX, GROUP, PATTERN   where to consume
//   STRATEGY          ordering.strategy: 'partition' (default, per key 'key') or 'global'
//   PARTITIONS        partitioning.partitionCount (partitioning enabled when > 1; default 1)
//   SESSION_MS        partitioning.sessionTimeoutMs (default 1500)
//   HANDLER_MS        time each message takes (default 0)
//   EXACTLY_ONCE=1    exactlyOnce.enabled
//   ATOMIC=1          the side effect is written through ctx.transaction() (committed with the ack) instead of directly
//   DIE_AFTER_SIDE_EFFECT_OF=<n>  on the first delivery of message n: make the side effect (direct, or added to the
//                     transaction), then SIGKILL itself before the handler returns (so before the ack / commit)
// Side effect of each handling: RPUSH `${PREFIX}:{${PATTERN}#<partition>}:effects` `${key}:${n}` (same slot as the
// partition, so a transaction may write it).
// Ownership log, written directly: RPUSH `${PREFIX}:test:events` `${partition}|${consumer}|${key}:${n}|start|${ms}`
// and `...|end|${ms}` around every handling.
// IPC to the parent: { listening: consumerName } once listening.
import 'reflect-metadata';
import { Controller, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Ctx, EventPattern, Payload } from '@nestjs/microservices';
import { Redis } from 'ioredis';
import { RedisStreamsServer } from '../../libs/redis-streams-enterprise/dist/index.js';

const env = process.env;
const recorder = new Redis(env.REDIS_URL);
const handlerMs = Number(env.HANDLER_MS ?? 0);
const partitions = Number(env.PARTITIONS ?? 1);
const atomic = env.ATOMIC === '1';
const dieAfterSideEffectOf = env.DIE_AFTER_SIDE_EFFECT_OF === undefined ? undefined : Number(env.DIE_AFTER_SIDE_EFFECT_OF);
const eventsKey = `${env.PREFIX}:test:events`; // = testKeys(PREFIX).testOwned('events') (test/support/keys.ts)

class JobsController {
  async handle(data, ctx) {
    const partition = ctx.getPartition();
    const label = `${data.key}:${data.n}`;
    await recorder.rpush(eventsKey, `${partition}|${ctx.getConsumer()}|${label}|start|${Date.now()}`);
    if (handlerMs > 0) await new Promise((resolve) => setTimeout(resolve, handlerMs));
    const effectsKey = `${env.PREFIX}:{${env.PATTERN}#${partition}}:effects`; // = testKeys(PREFIX).beside(partition, 'effects')
    if (atomic) ctx.transaction().call('RPUSH', effectsKey, label);
    else await recorder.rpush(effectsKey, label);
    if (data.n === dieAfterSideEffectOf && ctx.getDeliveryCount() === 1) {
      process.kill(process.pid, 'SIGKILL');
      await new Promise(() => undefined); // never returns
    }
    await recorder.rpush(eventsKey, `${partition}|${ctx.getConsumer()}|${label}|end|${Date.now()}`);
  }
}
Payload()(JobsController.prototype, 'handle', 0);
Ctx()(JobsController.prototype, 'handle', 1);
EventPattern(env.PATTERN)(JobsController.prototype, 'handle', Object.getOwnPropertyDescriptor(JobsController.prototype, 'handle'));
Controller()(JobsController);

class AppModule {}
Module({ controllers: [JobsController] })(AppModule);

const strategy = env.STRATEGY ?? 'partition';
const server = new RedisStreamsServer({
  connection: { url: env.REDIS_URL },
  streams: { keyPrefix: env.PREFIX },
  consumer: { group: env.GROUP, concurrency: 16, batchSize: 16, blockMs: 200, shutdownTimeoutMs: 2_000 },
  retry: { attempts: 3, backoff: { type: 'fixed', delayMs: 50, maxDelayMs: 50, jitter: 0 } },
  ordering: { enabled: true, strategy, maxConcurrency: 16, ...(strategy === 'partition' ? { partitionKey: 'key' } : {}) },
  partitioning: {
    enabled: partitions > 1,
    partitionCount: partitions,
    partitionKey: 'key',
    sessionTimeoutMs: Number(env.SESSION_MS ?? 1_500),
  },
  exactlyOnce: { enabled: env.EXACTLY_ONCE === '1' },
});
const app = await NestFactory.createMicroservice(AppModule, { strategy: server, logger: (env.LOG_LEVELS ?? 'error').split(',') });
app.enableShutdownHooks([], { useProcessExit: true });
await app.listen();
process.send?.({ listening: server.config.consumer.consumerName });
