// A consumer in its own process, for tests that kill it (SIGKILL, SIGTERM). Plain JavaScript on the built library
// (npm test builds it first), so the process is a real Node process like a user's, not a jest worker.
// env:
//   REDIS_URL, PREFIX, GROUP, PATTERN   where to consume
//   HANDLER_MS        time each message takes (default 0)
//   CONCURRENCY       consumer.concurrency and consumer.batchSize (default 8)
//   CLAIM_IDLE_MS     consumer.claimIdleMs (default 1000)
//   SHUTDOWN_TIMEOUT_MS  consumer.shutdownTimeoutMs (default: the library's)
//   CONSUMER_NAME     consumer.consumerName (default: the library's `<host>-<pid>-<random>`)
//   NAME_LEASE_MS     consumer.nameLeaseMs (default: the library's)
//   DIE_AFTER_SIDE_EFFECT_OF=<n>  on the first delivery of message n: record the side effect, then SIGKILL itself
//                     before the handler returns (so before the ack)
//   STATS_MS=<ms>     sample heapUsed every <ms> and send { stats } over IPC (see below)
// Side effect of each successful handling: RPUSH `${PREFIX}:test:processed` `${n}:${deliveryCount}:${consumerName}`
// (tests parse the first two colon-separated parts; the consumer name may itself contain colons).
// IPC to the parent: { listening: consumerName } once listening; { signal, running } when SIGTERM/SIGINT arrives;
// with STATS_MS, { stats: { heapUsed, peakHeapUsed, rss, running, maxRunning, handled } } every STATS_MS.
// SIGTERM/SIGINT: Nest's shutdown hooks close the app (the server drains in-flight handlers up to
// shutdownTimeoutMs and acknowledges the finished ones), then the process exits with code 0.
import 'reflect-metadata';
import { Controller, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Ctx, EventPattern, Payload } from '@nestjs/microservices';
import { Redis } from 'ioredis';
import { RedisStreamsServer } from '../../libs/redis-streams-enterprise/dist/index.js';

const env = process.env;
const processedKey = `${env.PREFIX}:test:processed`; // = testKeys(PREFIX).testOwned('processed') (test/support/keys.ts; plain JS here)
const recorder = new Redis(env.REDIS_URL);
const handlerMs = Number(env.HANDLER_MS ?? 0);
const dieAfterSideEffectOf = env.DIE_AFTER_SIDE_EFFECT_OF === undefined ? undefined : Number(env.DIE_AFTER_SIDE_EFFECT_OF);

/** Handlers running now, the most ever running at once, and handlings finished (side effect written). */
const load = { running: 0, maxRunning: 0, handled: 0 };

class JobsController {
  async handle(data, ctx) {
    load.running++;
    if (load.running > load.maxRunning) load.maxRunning = load.running;
    try {
      if (handlerMs > 0) await new Promise((resolve) => setTimeout(resolve, handlerMs));
      // The side effect whose count the test checks: one list element per successful handling.
      await recorder.rpush(processedKey, `${data.n}:${ctx.getDeliveryCount()}:${ctx.getConsumer()}`);
      load.handled++;
      if (data.n === dieAfterSideEffectOf && ctx.getDeliveryCount() === 1) {
        // Dies between the side effect and the ack: the at-least-once window a redelivery has to cover.
        process.kill(process.pid, 'SIGKILL');
        await new Promise(() => undefined); // never returns (the signal is delivered asynchronously)
      }
    } finally {
      load.running--;
    }
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
    ...(env.CONSUMER_NAME ? { consumerName: env.CONSUMER_NAME } : {}),
    concurrency: Number(env.CONCURRENCY ?? 8),
    batchSize: Number(env.CONCURRENCY ?? 8),
    blockMs: 200,
    claimIdleMs: Number(env.CLAIM_IDLE_MS ?? 1_000),
    reclaimIntervalMs: 100,
    ...(env.SHUTDOWN_TIMEOUT_MS ? { shutdownTimeoutMs: Number(env.SHUTDOWN_TIMEOUT_MS) } : {}),
    ...(env.NAME_LEASE_MS ? { nameLeaseMs: Number(env.NAME_LEASE_MS) } : {}),
  },
});
const app = await NestFactory.createMicroservice(AppModule, { strategy: server, logger: ['error'] });
// useProcessExit: after the graceful close Nest calls process.exit(0) instead of re-raising the signal, so the
// parent sees exit code 0 for a clean shutdown (and 1 if the shutdown failed). SHUTDOWN_HOOKS=default: the README's
// plain app.enableShutdownHooks(), which re-raises the signal after the close.
if (env.SHUTDOWN_HOOKS === 'default') app.enableShutdownHooks();
else app.enableShutdownHooks([], { useProcessExit: true });
for (const signal of ['SIGTERM', 'SIGINT']) {
  // Registered after Nest's listener; both run. Tells the parent how many handlers the signal interrupted. Once:
  // a listener still registered when Nest re-raises the signal (plain enableShutdownHooks) would keep the process alive.
  process.once(signal, () => process.send?.({ signal, running: load.running }));
}
await app.listen();
process.send?.({ listening: server.config.consumer.consumerName });

const statsMs = Number(env.STATS_MS ?? 0);
if (statsMs > 0) {
  let peakHeapUsed = 0;
  let ticks = 0;
  const reportEvery = Math.max(1, Math.round(200 / statsMs)); // sample often, report about every 200 ms
  const sample = setInterval(() => {
    const { heapUsed, rss } = process.memoryUsage();
    if (heapUsed > peakHeapUsed) peakHeapUsed = heapUsed;
    if (++ticks % reportEvery === 0 || ticks === 1) {
      process.send?.({ stats: { heapUsed, peakHeapUsed, rss, running: load.running, maxRunning: load.maxRunning, handled: load.handled } });
    }
  }, statsMs);
  sample.unref();
}
