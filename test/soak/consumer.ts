// A workload consumer in its own process, on the built library (imported through its package entry). One kind per
// process: the ordering strategy is a per-app setting. env: SOAK_KIND (plain|keyed|global), SOAK_NAME, SOAK_PREFIX,
// SOAK_CONNECTION (JSON), SOAK_TOPOLOGY, SOAK_LEDGER_DIR, SOAK_HANDLER_MS.
// IPC to the harness: { listening: consumerName } once listening; { stats: { heapUsed, rss } } every second.
import 'reflect-metadata';
import { randomBytes } from 'node:crypto';
import { Controller, Module, type Type } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Ctx, EventPattern, MessagePattern, Payload } from '@nestjs/microservices';
import { RedisStreamsContext, RedisStreamsExceptionFilter, RedisStreamsServer } from 'nestjs-redis-streams-enterprise';
import { LedgerWriter } from './ledger.js';
import { configFor, effectsKey, TOPIC, type ConsumerKind, type SoakMessage } from './workload.js';

const env = process.env;
const kind = env.SOAK_KIND as ConsumerKind;
const prefix = env.SOAK_PREFIX as string;
const handlerMs = Number(env.SOAK_HANDLER_MS ?? 2);
const ledger = new LedgerWriter(env.SOAK_LEDGER_DIR as string, `consumer-${env.SOAK_NAME}`);
let handlings = 0;
const handlingId = () => `${process.pid}.${++handlings}`;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** An at-least-once handling: start, the handler's work, end (or a throw for a poison message). */
async function handleAtLeastOnce(topic: string, data: SoakMessage, ctx: RedisStreamsContext): Promise<void> {
  const h = handlingId();
  ledger.write({ t: 's', topic, id: data.id, h, c: ctx.getConsumer(), eid: ctx.getEntryId(), dc: ctx.getDeliveryCount(), ts: Date.now() });
  if (handlerMs > 0) await sleep(handlerMs);
  if (data.poison) {
    ledger.write({ t: 'x', h, ts: Date.now() });
    throw new Error(`poison message ${data.id}`);
  }
  ledger.write({ t: 'e', h, ts: Date.now() });
}

@Controller()
class PlainController {
  @EventPattern(TOPIC.plain)
  plain(@Payload() payload: unknown, @Ctx() context: unknown): Promise<void> {
    return handleAtLeastOnce(TOPIC.plain, payload as SoakMessage, context as RedisStreamsContext);
  }

  /** Reached only by payloads the registered schema accepts (an invalid one is dead-lettered before). */
  @EventPattern(TOPIC.checked)
  checked(@Payload() payload: unknown, @Ctx() context: unknown): Promise<void> {
    return handleAtLeastOnce(TOPIC.checked, payload as SoakMessage, context as RedisStreamsContext);
  }

  @MessagePattern(TOPIC.rpc)
  rpc(@Payload() data: { id: string; n: number }): { id: string; doubled: number } {
    return { id: data.id, doubled: data.n * 2 };
  }
}

/** Ordered topics: the effect is written in the handler's transaction, so it commits with the ack or not at all. */
function orderedController(topic: string): Type {
  @Controller()
  class OrderedController {
    @EventPattern(topic)
    async handle(@Payload() payload: unknown, @Ctx() context: unknown): Promise<void> {
      const data = payload as SoakMessage;
      const ctx = context as RedisStreamsContext;
      const h = handlingId();
      const partition = ctx.getPartition() ?? 0;
      ledger.write({ t: 's', topic, id: data.id, h, c: ctx.getConsumer(), p: partition, eid: ctx.getEntryId(), dc: ctx.getDeliveryCount(), ts: Date.now() });
      if (handlerMs > 0) await sleep(handlerMs);
      ctx.transaction().call('RPUSH', effectsKey(prefix, topic, partition), `${data.id}|${h}`);
      ledger.write({ t: 'e', h, ts: Date.now() });
    }
  }
  return OrderedController;
}

const controller = kind === 'plain' ? PlainController : orderedController(kind === 'keyed' ? TOPIC.keyed : TOPIC.global);
@Module({ controllers: [controller] })
class AppModule {}

const config = configFor(kind, prefix, JSON.parse(env.SOAK_CONNECTION as string), env.SOAK_TOPOLOGY ?? 'single');
// A random suffix of our own as well: two incarnations of one logical consumer must never share a name.
const server = new RedisStreamsServer({
  ...config,
  consumer: { ...config.consumer, consumerName: `${env.SOAK_NAME}-${process.pid}-${randomBytes(3).toString('hex')}` },
});
const app = await NestFactory.createMicroservice(AppModule, { strategy: server, logger: (env.SOAK_LOG_LEVELS ?? 'error').split(',') as never });
app.useGlobalFilters(new RedisStreamsExceptionFilter());
app.enableShutdownHooks([], { useProcessExit: true });
await app.listen();
process.send?.({ listening: server.config.consumer.consumerName });

const stats = setInterval(() => {
  const { heapUsed, rss } = process.memoryUsage();
  process.send?.({ stats: { heapUsed, rss } });
}, 1_000);
stats.unref();
