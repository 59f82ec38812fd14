import type { INestApplicationContext, LogLevel } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { RequestTimeoutError } from 'nestjs-redis-streams-enterprise';
import { randomBytes } from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';
import {
  CURRENCIES,
  computeQuote,
  toCents,
  type BillingStats,
  type Currency,
  type OrderCreated,
  type QuoteRequest,
} from '../../example-consumer/src/orders.contracts.js';
import { redactUrl } from '../../example-consumer/src/redact-url.js';
import { runWithConcurrency } from '../../example-producer/src/concurrency.js';
import { OrdersProducer } from '../../example-producer/src/orders.producer.js';
import { producerConfigFromEnv } from '../../example-producer/src/producer.config.js';
import { ProducerAppModule } from '../../example-producer/src/producer-app.module.js';
import { ConsumerProcess } from './consumer.process.js';
import { deleteKeys, inspectionConnection, unfinishedEntries } from './demo-keys.js';
import { pingRedis, redisServerVersion, ThrowawayRedis } from './redis-server.process.js';
import { fmt, percentile, renderTable, type Row } from './summary.js';
import { runTour } from './tour/tour.js';

export interface EnterpriseFeaturesExampleOptions {
  /** Redis to use. Unset: a throw-away redis-server on a free loopback port. @default process.env.REDIS_URL */
  redisUrl?: string;
  /** `orders.created` events to emit. @default 3000 */
  events?: number;
  /** `orders.quote` requests to send. @default 500 */
  requests?: number;
  /** Emits or requests in flight at once. @default 50 */
  concurrency?: number;
  /** Consumer and Nest logs at `log` level instead of `warn`. @default false */
  verbose?: boolean;
  /** How long to wait for the consumer to handle every event. @default 30000 */
  deliveryTimeoutMs?: number;
  /** After the delivery phase, the tour of ordering, exactly-once, schemas, replay and dead letters. @default true */
  tour?: boolean;
  /** Leave Redis and the demo's keys in place: the result's `keep` cleans up later (DEMO_STAY_UP). @default false */
  stayUp?: boolean;
}

export interface EnterpriseFeaturesExampleResult {
  /**
   * True when every event was delivered, every request answered correctly, the consumer stopped cleanly and (with
   * `tour`) every check of the tour held.
   */
  readonly ok: boolean;
  /** One line per failed check. */
  readonly failures: readonly string[];
  readonly summary: string;
  /** With `stayUp`: where the run's keys are, and the clean-up to call when done with them. */
  readonly keep?: { readonly redisUrl: string; readonly keyPrefix: string; readonly cleanup: () => Promise<void> };
}

/** redis-server is needed (no REDIS_URL given) but not installed. */
export class RedisServerMissingError extends Error {
  override readonly name = 'RedisServerMissingError';
}

const CONSUMER_GROUP = 'billing';
const CONSUMER_READY_TIMEOUT_MS = 20_000;
const CONSUMER_STOP_TIMEOUT_MS = 15_000;
const STATS_POLL_MS = 100;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const errorMessage = (error: unknown) => (error instanceof Error ? `${error.name}: ${error.message}` : String(error));

/** A deterministic order: amounts between 1.00 and 500.99, currencies in rotation. */
function makeOrder(runId: string, i: number): OrderCreated {
  const amount = (100 + ((i * 7_919) % 50_000)) / 100;
  return { orderId: `ord-${runId}-${i}`, amount, currency: CURRENCIES[i % CURRENCIES.length] };
}

function makeQuoteRequest(i: number): QuoteRequest {
  const amount = (500 + ((i * 389) % 10_000)) / 100; // whole cents: the DTO allows at most two decimals
  return { amount, quantity: 1 + (i % 12), currency: CURRENCIES[(i + 1) % CURRENCIES.length] };
}

/**
 * The demo behind `npm run demo`: a producer (this process) and the example billing consumer (a child process)
 * talk only through Redis Streams.
 *
 * 1. Redis: REDIS_URL, or a throw-away `redis-server` on a free 127.0.0.1 port (never 6379 unless REDIS_URL says so).
 * 2. Starts `dist/apps/example-consumer/src/main.js` with REDIS_URL and a key prefix unique to this run
 *    (`demo:run-<hex>`), and waits until it answers a `billing.stats` request.
 * 3. Emits `events` `orders.created` events, then sends `requests` `orders.quote` requests and one
 *    `{ cmd: 'orders.sum' }` request, each with at most `concurrency` in flight, checking every reply.
 * 4. Waits until the consumer reports every order handled, compares amounts (checksum) and counts duplicates.
 * 5. Stops the consumer with SIGTERM and checks it exits with code 0 and left nothing pending in Redis.
 * 6. The tour (`tour/`, keys under `demo:run-<hex>:tour`): two in-process consumers and a producer, configured by
 *    `RedisStreamsEnterpriseModule.forRoot`, go through 1. a partitioned topic with per-key ordering, 2. exactly-once
 *    (idempotent publish, `ctx.transaction()`), 3. the schema registry (zod, strict), 4. replay, 5. dead letters and
 *    redrive; each step prints what it shows and adds checked rows to the summary.
 * 7. Deletes its keys (SCAN + UNLINK of `demo:run-<hex>:*`) on a user-provided Redis, or stops the throw-away one.
 *
 * @throws RedisServerMissingError when REDIS_URL is unset and redis-server is not installed.
 */
export async function enterpriseFeaturesExample(options: EnterpriseFeaturesExampleOptions = {}): Promise<EnterpriseFeaturesExampleResult> {
  const events = options.events ?? 3_000;
  const requests = options.requests ?? 500;
  const concurrency = options.concurrency ?? 50;
  const verbose = options.verbose ?? false;
  const deliveryTimeoutMs = options.deliveryTimeoutMs ?? 30_000;
  const withTour = options.tour ?? true;
  const userUrl = options.redisUrl ?? process.env.REDIS_URL;

  const started = performance.now();
  const step = (message: string) => console.log(`  ${fmt.ms(performance.now() - started).padStart(8)}  ${message}`);
  const failures: string[] = [];
  const check = (ok: boolean, failure: string) => {
    if (!ok) failures.push(failure);
    return ok;
  };

  console.log(
    `\nnestjs-redis-streams-enterprise demo: ${fmt.int(events)} events and ${fmt.int(requests)} requests ` +
      `between two processes over Redis Streams${withTour ? ', then a tour of ordering, exactly-once, schemas, replay and dead letters' : ''}\n`,
  );

  // 1. Redis
  let throwaway: ThrowawayRedis | undefined;
  let url: string;
  let redisLabel: string;
  if (userUrl) {
    try {
      const info = await pingRedis(userUrl);
      redisLabel = `${redactUrl(userUrl)} (REDIS_URL, Redis ${/redis_version:(\S+)/.exec(info)?.[1] ?? '?'})`;
    } catch (error) {
      throw new Error(`Redis at ${redactUrl(userUrl)} (REDIS_URL) is not reachable: ${errorMessage(error)}`, { cause: error });
    }
    url = userUrl;
  } else {
    const version = redisServerVersion();
    if (!version) throw new RedisServerMissingError('redis-server is not installed');
    throwaway = await ThrowawayRedis.start();
    url = throwaway.url;
    redisLabel = `${url} (throw-away redis-server ${version} started by the demo, no persistence)`;
  }
  const runId = randomBytes(4).toString('hex');
  const prefix = `demo:run-${runId}`;
  step(`Redis: ${redisLabel}`);
  step(`Key prefix: ${prefix}  consumer group: ${CONSUMER_GROUP}`);

  let consumer: ConsumerProcess | undefined;
  let producerApp: INestApplicationContext | undefined;
  let cleaned: Promise<void> | undefined;
  const cleanup = () =>
    (cleaned ??= (async () => {
      await producerApp?.close().catch((error: unknown) => step(`Producer close failed: ${errorMessage(error)}`));
      if (consumer && !consumer.hasExited) await consumer.stop(CONSUMER_STOP_TIMEOUT_MS);
      if (throwaway) {
        await throwaway.stop();
      } else {
        const redis = inspectionConnection(url);
        redis.on('error', () => undefined); // reported by the commands below
        try {
          await redis.connect();
          const deleted = await deleteKeys(redis, prefix);
          step(`Deleted ${fmt.int(deleted)} demo keys (SCAN MATCH ${prefix}:* + UNLINK)`);
        } catch (error) {
          step(`Could not delete the demo keys under ${prefix}:* : ${errorMessage(error)}`);
        } finally {
          redis.disconnect();
        }
      }
    })());
  const onSigint = () => {
    step('Interrupted: cleaning up');
    void cleanup().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSigint);
  let kept = false;

  try {
    // 2. Consumer process
    consumer = ConsumerProcess.start({
      ...process.env,
      REDIS_URL: url,
      RSE_KEY_PREFIX: prefix,
      LOG_LEVEL: verbose ? 'log' : 'warn',
      // Nest colours its logs unless NO_COLOR is set; keep escape codes out of piped or redirected output.
      ...(process.stdout.isTTY ? {} : { NO_COLOR: '1' }),
    });
    const consumerProcess = consumer;
    step(`Started the consumer: node dist/apps/example-consumer/src/main.js (pid ${consumer.pid})`);

    const logger: LogLevel[] = verbose ? ['log', 'warn', 'error', 'fatal'] : ['warn', 'error', 'fatal'];
    producerApp = await NestFactory.createApplicationContext(
      ProducerAppModule.forRoot(producerConfigFromEnv({ REDIS_URL: url, RSE_KEY_PREFIX: prefix })),
      { logger },
    );
    const producer = producerApp.get(OrdersProducer);
    await producer.connect();

    const consumerExit = consumerProcess.exited.then((exit) => {
      throw new Error(`the consumer process exited early (code ${exit.code}, signal ${exit.signal})`);
    });
    consumerExit.catch(() => undefined); // observed through the races below
    const waitingSince = performance.now();
    let ready: BillingStats | undefined;
    while (!ready) {
      try {
        ready = await Promise.race([producer.stats(), consumerExit]);
      } catch (error) {
        const retry = error instanceof RequestTimeoutError && performance.now() - waitingSince < CONSUMER_READY_TIMEOUT_MS;
        if (!retry) throw new Error(`The consumer did not become ready: ${errorMessage(error)}`, { cause: error });
      }
    }
    step(`Consumer ${ready.consumer} is listening and answered billing.stats (${fmt.ms(performance.now() - waitingSince)})`);

    // 3a. Events, watched by a poller that records when the consumer has handled them all
    const orders = Array.from({ length: events }, (_, i) => makeOrder(runId, i));
    let target = Number.POSITIVE_INFINITY;
    let latest = ready;
    let deliveredAt: number | undefined;
    let watching = true;
    const emitStart = performance.now();
    const watcher = (async () => {
      while (watching) {
        try {
          latest = await Promise.race([producer.stats(), consumerExit]);
          if (latest.uniqueOrders >= target) {
            deliveredAt = performance.now();
            return;
          }
        } catch (error) {
          if (!consumerProcess.hasExited && error instanceof RequestTimeoutError) continue;
          throw error;
        }
        await sleep(STATS_POLL_MS);
      }
    })();
    watcher.catch(() => undefined); // awaited below

    const emitted = await runWithConcurrency(events, concurrency, (i) => producer.orderCreated(orders[i]));
    const emitMs = performance.now() - emitStart;
    const expectedCents: Partial<Record<Currency, number>> = {};
    let emittedCount = 0;
    const emitErrors = new Map<string, number>();
    emitted.forEach((result, i) => {
      if (result.status === 'fulfilled') {
        emittedCount++;
        const { currency, amount } = orders[i];
        expectedCents[currency] = (expectedCents[currency] ?? 0) + toCents(amount);
      } else {
        const key = errorMessage(result.reason);
        emitErrors.set(key, (emitErrors.get(key) ?? 0) + 1);
      }
    });
    target = emittedCount;
    step(`Emitted ${fmt.int(emittedCount)}/${fmt.int(events)} orders.created events in ${fmt.ms(emitMs)}`);
    for (const [message, count] of emitErrors) step(`  emit failed ${count}x: ${message}`);

    // 3b. Requests
    const latencies: number[] = [];
    const requestStart = performance.now();
    const replies = await runWithConcurrency(requests, concurrency, async (i) => {
      const request = makeQuoteRequest(i);
      const sent = performance.now();
      const quote = await producer.quote(request);
      latencies.push(performance.now() - sent);
      return isDeepStrictEqual(quote, computeQuote(request));
    });
    const requestMs = performance.now() - requestStart;
    const answered = replies.filter((r) => r.status === 'fulfilled' && r.value).length;
    const wrong = replies.filter((r) => r.status === 'fulfilled' && !r.value).length;
    const requestErrors = new Map<string, number>();
    for (const r of replies) {
      if (r.status === 'rejected') requestErrors.set(errorMessage(r.reason), (requestErrors.get(errorMessage(r.reason)) ?? 0) + 1);
    }
    step(`Sent ${fmt.int(requests)} orders.quote requests: ${fmt.int(answered)} answered correctly in ${fmt.ms(requestMs)}`);
    for (const [message, count] of requestErrors) step(`  request failed ${count}x: ${message}`);

    const sumAmounts = orders.slice(0, 100).map((o) => o.amount);
    const expectedSum = sumAmounts.reduce((total, amount) => total + toCents(amount), 0) / 100;
    let sumOk = false;
    let sumText: string;
    try {
      const sum = await producer.sum(sumAmounts);
      sumOk = sum.count === sumAmounts.length && sum.total === expectedSum;
      sumText = `${sum.count} amounts -> ${fmt.money(sum.total * 100)}${sumOk ? '' : ` (expected ${fmt.money(expectedSum * 100)})`}`;
    } catch (error) {
      sumText = `failed: ${errorMessage(error)}`;
    }

    // 4. Wait for the consumer to handle every event
    let deadlineTimer: NodeJS.Timeout | undefined;
    const deadline = new Promise<'timeout'>((resolve) => {
      deadlineTimer = setTimeout(() => resolve('timeout'), deliveryTimeoutMs);
    });
    const outcome = await Promise.race([watcher.then(() => 'done' as const), deadline]).catch((error: unknown) => errorMessage(error));
    clearTimeout(deadlineTimer);
    watching = false;
    if (outcome !== 'done') {
      step(outcome === 'timeout' ? `Gave up waiting for deliveries after ${fmt.ms(deliveryTimeoutMs)}` : `Watching deliveries failed: ${outcome}`);
    } else {
      step(`The consumer handled all ${fmt.int(target)} events ${fmt.ms((deliveredAt ?? performance.now()) - emitStart)} after the first emit`);
    }
    let final = latest;
    if (!consumerProcess.hasExited) {
      final = await Promise.race([producer.stats(), consumerExit]).catch(() => latest);
    }

    // 5. Stop everything, then look at what Redis still holds for the group
    await producerApp.close();
    producerApp = undefined;
    const exit = await consumerProcess.stop(CONSUMER_STOP_TIMEOUT_MS);
    const exitClean = exit.code === 0 && !exit.timedOut;
    step(`Consumer stopped by SIGTERM: ${exit.timedOut ? 'did not exit in time, killed' : `exit code ${exit.code ?? exit.signal}`} in ${fmt.ms(exit.stopMs ?? 0)}`);
    const redis = inspectionConnection(url);
    redis.on('error', () => undefined); // reported by the commands below
    let unfinished: { pending: number; lag: number | null; streams: number } | undefined;
    try {
      await redis.connect();
      unfinished = await unfinishedEntries(redis, prefix, CONSUMER_GROUP);
    } catch (error) {
      step(`Could not inspect Redis after the run: ${errorMessage(error)}`);
    } finally {
      redis.disconnect();
    }

    // 6. The tour of the enterprise features
    const tour = withTour ? await runTour({ redisUrl: url, keyPrefix: `${prefix}:tour`, runId, verbose, log: step }) : undefined;
    failures.push(...(tour?.failures ?? []));

    // 7. Summary
    const totalMs = performance.now() - started;
    const deliveryMs = deliveredAt === undefined ? undefined : deliveredAt - emitStart;
    const checksumOk = CURRENCIES.every((c) => (final.revenueCents[c] ?? 0) === (expectedCents[c] ?? 0));
    const checksumText = CURRENCIES.map((c) => `${c} ${fmt.money(final.revenueCents[c] ?? 0)}`).join(', ');
    const t = final.transport;
    const rows: Row[] = [
      ['events emitted (orders.created)', `${fmt.int(emittedCount)} / ${fmt.int(events)}`, check(emittedCount === events, `${events - emittedCount} events could not be emitted`)],
      [
        'events delivered (unique orders handled)',
        `${fmt.int(final.uniqueOrders)} / ${fmt.int(emittedCount)}`,
        check(final.uniqueOrders === emittedCount, `${emittedCount - final.uniqueOrders} events were not handled by the consumer`),
      ],
      ['duplicates / redeliveries', `${fmt.int(final.duplicates)} / ${fmt.int(final.redeliveries)} (at-least-once; 0 expected here)`],
      ['payload checksum (sum of amounts)', checksumOk ? checksumText : `${checksumText} (expected other totals)`, check(checksumOk, 'the amounts the consumer summed differ from those emitted')],
      [
        'requests answered (orders.quote)',
        `${fmt.int(answered)} / ${fmt.int(requests)} correct${wrong ? `, ${wrong} wrong` : ''}`,
        check(answered === requests, `${requests - answered} orders.quote requests were not answered correctly`),
      ],
      ['request latency p50 / p99', `${fmt.latency(percentile(latencies, 0.5))} / ${fmt.latency(percentile(latencies, 0.99))}`],
      ["request { cmd: 'orders.sum' }", sumText, check(sumOk, 'the orders.sum request was not answered correctly')],
      [
        'consumer transport metrics',
        `acked ${fmt.int(t.acked)}, failed ${t.failed}, retried ${t.retried}, dead-lettered ${t.deadLettered}, reclaimed ${t.reclaimed}`,
        check(t.deadLettered === 0, `${t.deadLettered} messages were dead-lettered`),
      ],
      [
        'left in Redis: pending / undelivered',
        unfinished ? `${unfinished.pending} / ${unfinished.lag ?? 'unknown'} (group ${CONSUMER_GROUP}, ${unfinished.streams} streams)` : 'not inspected',
        check(unfinished?.pending === 0 && unfinished.lag === 0, 'entries were left pending or undelivered in Redis'),
      ],
      [
        'consumer shutdown (SIGTERM)',
        exit.timedOut ? `no exit after ${fmt.ms(CONSUMER_STOP_TIMEOUT_MS)} (killed)` : `exit code ${exit.code ?? exit.signal} after ${fmt.ms(exit.stopMs ?? 0)}`,
        check(exitClean, 'the consumer did not exit cleanly on SIGTERM'),
      ],
      ['emit phase', `${fmt.ms(emitMs)} (${fmt.rate(emittedCount, emitMs)} events/s, ${concurrency} in flight)`],
      ['request phase', `${fmt.ms(requestMs)} (${fmt.rate(answered, requestMs)} requests/s, ${concurrency} in flight)`],
      [
        'end-to-end delivery',
        deliveryMs === undefined ? 'incomplete' : `${fmt.ms(deliveryMs)} from first emit to last handled (${fmt.rate(final.uniqueOrders, deliveryMs)} events/s)`,
      ],
      ...(tour?.rows ?? []),
      ['total run time', fmt.ms(totalMs)],
    ];
    check(outcome === 'done', 'not every event was handled before the timeout');
    const summary = renderTable(`Summary (Redis ${redactUrl(url)}, prefix ${prefix})`, rows);
    kept = options.stayUp === true;
    return { ok: failures.length === 0, failures, summary, ...(kept ? { keep: { redisUrl: url, keyPrefix: prefix, cleanup } } : {}) };
  } finally {
    process.removeListener('SIGINT', onSigint);
    if (!kept) await cleanup();
  }
}
