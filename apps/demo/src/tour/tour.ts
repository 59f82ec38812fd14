import { ConsoleLogger, type INestApplicationContext, type LogLevel } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { AsyncMicroserviceOptions } from '@nestjs/microservices';
import { RedisStreamsClient, RedisStreamsExceptionFilter, RedisStreamsServer } from 'nestjs-redis-streams-enterprise';
import { inspectionConnection, unfinishedEntries } from '../demo-keys.js';
import { fmt, type Row } from '../summary.js';
import { AccountMoves, runOrderingStep } from './ordering.step.js';
import { PaymentCalls, runExactlyOnceStep } from './exactly-once.step.js';
import { OpenedAccounts, runSchemaStep } from './schema.step.js';
import { runReplayStep } from './replay.step.js';
import { AmountRules, InvoiceBook, runDeadLettersStep } from './dead-letters.step.js';
import { runTracingStep } from './tracing.step.js';
import { runMirrorStep } from './mirror.step.js';
import { runErasureStep } from './erasure.step.js';
import { TOUR_GROUP, tourConfig } from './tour.config.js';
import { errorText, shortName, type StepReport, type Tour, type TourConsumer } from './tour-checks.js';
import { TourModule } from './tour.module.js';

export interface TourOptions {
  readonly redisUrl: string;
  /** `streams.keyPrefix` of the tour; the caller deletes `<keyPrefix>:*` afterwards. */
  readonly keyPrefix: string;
  /** Makes the consumer names unique to this run. */
  readonly runId: string;
  /** Nest and library logs at `log` level instead of `warn`. */
  readonly verbose: boolean;
  /** Prints one progress line. */
  readonly log: (message: string) => void;
}

export interface TourResult {
  readonly rows: readonly Row[];
  readonly failures: readonly string[];
}

const CONSUMERS = 2;
const STEPS: readonly ((tour: Tour) => Promise<StepReport>)[] = [runOrderingStep, runExactlyOnceStep, runSchemaStep, runReplayStep, runDeadLettersStep, runTracingStep, runMirrorStep, runErasureStep];

/**
 * The tour of the seed document's enterprise features, run after the delivery phase: two consumers (Nest
 * microservices in this process, one consumer group) and a producer (a Nest application context), all configured
 * by `RedisStreamsEnterpriseModule.forRoot`, then one step per feature, each printing what it shows and checking it.
 * A step that throws is reported as failed and the next one runs. Everything is closed before it returns.
 */
export async function runTour(options: TourOptions): Promise<TourResult> {
  const { redisUrl, keyPrefix, runId, log } = options;
  const started = performance.now();
  const rows: Row[] = [];
  const failures: string[] = [];
  const logLevels: LogLevel[] = options.verbose ? ['log', 'warn', 'error', 'fatal'] : ['warn', 'error', 'fatal'];
  const logger = new ConsoleLogger({ prefix: 'tour', logLevels, colors: process.stdout.isTTY === true });
  // What the handlers record, and step 5's fix: one instance each, shared by both consumers through DI.
  const shared = [new AccountMoves(), new PaymentCalls(), new OpenedAccounts(), new InvoiceBook(), new AmountRules()];
  const consumers: TourConsumer[] = [];
  let producer: INestApplicationContext | undefined;
  const redis = inspectionConnection(redisUrl);
  redis.on('error', () => undefined); // reported by the commands that use it

  try {
    await redis.connect();
    for (let n = 1; n <= CONSUMERS; n++) {
      const name = `tour-${n}-${runId}`;
      const app = await NestFactory.createMicroservice<AsyncMicroserviceOptions>(TourModule.consumer(tourConfig(redisUrl, keyPrefix, name), shared), {
        inject: [RedisStreamsServer],
        useFactory: (server: RedisStreamsServer) => ({ strategy: server }),
        logger,
        abortOnError: false,
      });
      consumers.push({ name, app, server: app.get(RedisStreamsServer) });
      app.useGlobalFilters(new RedisStreamsExceptionFilter()); // dead letters keep the handler's error name
      await app.listen();
    }
    producer = await NestFactory.createApplicationContext(TourModule.producer(tourConfig(redisUrl, keyPrefix)), { logger, abortOnError: false });
    await producer.get(RedisStreamsClient).connect();
    log(
      `Tour of the enterprise features: ${CONSUMERS} consumers (Nest microservices ${consumers.map((c) => shortName(c.name)).join(', ')}, ` +
        `group ${TOUR_GROUP}) and a producer context, all RedisStreamsEnterpriseModule.forRoot; key prefix ${keyPrefix}`,
    );
    const tour: Tour = { keyPrefix, redisUrl, producer, consumers, redis, log };
    for (const step of STEPS) {
      try {
        const report = await step(tour);
        rows.push(...report.rows);
        failures.push(...report.failures);
      } catch (error) {
        log(`  ${step.name} failed: ${errorText(error)}`);
        rows.push([`tour: ${step.name}`, `failed: ${errorText(error)}`, false]);
        failures.push(`tour: ${step.name} failed: ${errorText(error)}`);
      }
    }
  } catch (error) {
    log(`The tour could not start: ${errorText(error)}`);
    rows.push(['tour', `could not start: ${errorText(error)}`, false]);
    failures.push(`the tour could not start: ${errorText(error)}`);
  } finally {
    const closeStart = performance.now();
    const closed = await Promise.all(
      [...consumers.map((c) => c.app), ...(producer ? [producer] : [])].map((app) =>
        app.close().then(
          () => true,
          (error: unknown) => {
            log(`  closing a tour app failed: ${errorText(error)}`);
            return false;
          },
        ),
      ),
    );
    const closeMs = performance.now() - closeStart;
    let unfinished: Awaited<ReturnType<typeof unfinishedEntries>> | undefined;
    try {
      if (consumers.length > 0) unfinished = await unfinishedEntries(redis, keyPrefix, TOUR_GROUP);
    } catch (error) {
      log(`  could not inspect the tour's streams: ${errorText(error)}`);
    } finally {
      redis.disconnect();
    }
    if (consumers.length > 0) {
      log(`Tour apps closed in ${fmt.ms(closeMs)}`);
      const value = unfinished
        ? `${unfinished.pending} / ${unfinished.lag ?? 'unknown'} (group ${TOUR_GROUP}, ${unfinished.streams} streams); apps closed in ${fmt.ms(closeMs)}`
        : 'not inspected';
      const ok = closed.every(Boolean) && unfinished?.pending === 0 && unfinished.lag === 0;
      rows.push(['tour: left in Redis pending / undelivered', value, ok]);
      if (!ok) failures.push('tour: entries were left pending or undelivered, or an app did not close cleanly');
    }
    rows.push(['tour run time', fmt.ms(performance.now() - started)]);
  }
  return { rows, failures };
}
