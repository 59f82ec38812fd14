import { ConsoleLogger, Controller, Injectable, Module, UseFilters, type DynamicModule, type INestApplication, type LogLevel } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Payload } from '@nestjs/microservices';
import {
  RedisStreamsClient,
  RedisStreamsConsoleModule,
  RedisStreamsEnterpriseModule,
  RedisStreamsExceptionFilter,
  RedisStreamsServer,
  StreamEvent,
  type RedisStreamsEnterpriseConfig,
} from 'nestjs-redis-streams-enterprise';
import { lastValueFrom } from 'rxjs';

/** The pattern of the console demo's own orders. */
export const CONSOLE_DEMO_ORDERS = 'console.demo.orders';
/** Attempts that fail for an order marked `flaky` (retry.attempts is 3: it is dead-lettered, and a redrive succeeds). */
const FLAKY_FAILURES = 3;
/** Orders whose attempts are counted, at most (the demo sends a handful). */
const MAX_TRACKED = 1_000;

/** Counts attempts per flaky order (one instance, provided by value). */
@Injectable()
export class FlakyOrders {
  readonly attempts = new Map<string, number>();
}

@Controller()
@UseFilters(RedisStreamsExceptionFilter)
class ConsoleDemoController {
  constructor(private readonly flaky: FlakyOrders) {}

  /** Fails the first FLAKY_FAILURES attempts of an order marked `flaky`: dead-lettered, then handled once redriven. */
  @StreamEvent(CONSOLE_DEMO_ORDERS)
  handle(@Payload() order: { orderId: string; flaky?: boolean }) {
    if (!order.flaky) return;
    const attempts = (this.flaky.attempts.get(order.orderId) ?? 0) + 1;
    if (this.flaky.attempts.size < MAX_TRACKED || this.flaky.attempts.has(order.orderId)) this.flaky.attempts.set(order.orderId, attempts);
    if (attempts <= FLAKY_FAILURES) throw new Error(`the warehouse did not answer for ${order.orderId} (attempt ${attempts})`);
  }
}

@Module({})
class ConsoleDemoModule {
  static forRoot(config: RedisStreamsEnterpriseConfig): DynamicModule {
    return {
      module: ConsoleDemoModule,
      imports: [RedisStreamsEnterpriseModule.forRoot({ ...config, isGlobal: true }), RedisStreamsConsoleModule.register({ path: '/rse-console', writes: true })],
      controllers: [ConsoleDemoController],
      providers: [{ provide: FlakyOrders, useValue: new FlakyOrders() }],
    };
  }
}

/**
 * `DEMO_STAY_UP=1`: after the run, a hybrid Nest app (HTTP on 127.0.0.1 + a consumer) serves the operator console over
 * the tour's keys (its partitioned topics, schema versions) plus `console.demo.orders`, where two flaky orders are
 * dead-lettered for the operator to redrive. Writes are allowed and there is no guard: it listens on loopback only.
 * @returns the app (close it to stop) and the console's URL.
 */
export async function startConsoleDemo(redisUrl: string, keyPrefix: string, port: number, verbose: boolean): Promise<{ app: INestApplication; url: string }> {
  const config: RedisStreamsEnterpriseConfig = {
    connection: { url: redisUrl, connectionName: 'demo-console' },
    streams: { keyPrefix },
    consumer: { group: 'console-demo', blockMs: 1_000, claimIdleMs: 5_000, reclaimIntervalMs: 500 },
    retry: { attempts: FLAKY_FAILURES, backoff: { type: 'fixed', delayMs: 200, maxDelayMs: 200, jitter: 0 } },
    replay: { enabled: true },
  };
  // The flaky orders' dead-lettering is logged as an error: expected here, so shown only with DEMO_VERBOSE=1.
  const logLevels: LogLevel[] = verbose ? ['log', 'warn', 'error', 'fatal'] : ['fatal'];
  const logger = new ConsoleLogger({ prefix: 'console', logLevels, colors: process.stdout.isTTY === true });
  const app = await NestFactory.create(ConsoleDemoModule.forRoot(config), { logger });
  app.connectMicroservice({ strategy: app.get(RedisStreamsServer) });
  await app.startAllMicroservices();
  await app.listen(port, '127.0.0.1');
  const client = app.get(RedisStreamsClient);
  for (const [orderId, flaky] of [['ord-1', false], ['ord-2', true], ['ord-3', false], ['ord-4', true]] as const) {
    await lastValueFrom(client.emit(CONSOLE_DEMO_ORDERS, { orderId, flaky }));
  }
  const address = app.getHttpServer().address() as { port: number };
  return { app, url: `http://127.0.0.1:${address.port}/rse-console` };
}
