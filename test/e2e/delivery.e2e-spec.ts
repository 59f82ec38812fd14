import { Controller } from '@nestjs/common';
import { Ctx, EventPattern, MessagePattern, Payload, RpcException, Server } from '@nestjs/microservices';
import type { INestMicroservice } from '@nestjs/common';
import { lastValueFrom, toArray } from 'rxjs';
import { of } from 'rxjs';
import {
  RedisStreamsClient,
  RedisStreamsContext,
  RedisStreamsRecordBuilder,
  RemoteHandlerError,
  RequestTimeoutError,
  type RedisStreamsServer,
} from 'nestjs-redis-streams-enterprise';
import { testConfig, startConsumer } from '../support/nest-apps.js';
import { cleanupPrefix, rawRedis, uniquePrefix, type RawRedis } from '../support/redis.js';
import { testKeys } from '../support/keys.js';
import { waitFor } from '../support/wait-for.js';

const received: { data: unknown; stream: string; entryId: string; group: string; consumer: string; deliveryCount: number; pattern: string; headers: Record<string, string>; messageId: string }[] = [];

@Controller()
class DeliveryController {
  @EventPattern<string>('orders.created')
  onOrder(@Payload() data: unknown, @Ctx() ctx: RedisStreamsContext) {
    received.push({
      data,
      stream: ctx.getStream(),
      entryId: ctx.getEntryId(),
      group: ctx.getGroup(),
      consumer: ctx.getConsumer(),
      deliveryCount: ctx.getDeliveryCount(),
      pattern: ctx.getPattern(),
      headers: { ...ctx.getHeaders() },
      messageId: ctx.getMessageId(),
    });
  }

  @MessagePattern('math.sum')
  sum(@Payload() numbers: number[]) {
    return numbers.reduce((a, b) => a + b, 0);
  }

  @MessagePattern({ cmd: 'count-up' })
  countUp(@Payload() n: number) {
    return of(...Array.from({ length: n }, (_, i) => i + 1));
  }

  @MessagePattern('math.fail')
  fail() {
    throw new RpcException({ message: 'division by zero', status: 'bad-input' });
  }

  @MessagePattern('math.slow')
  async slow() {
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    return 'late';
  }
}

describe('delivery (real Redis)', () => {
  const prefix = uniquePrefix('delivery');
  const keys = testKeys(prefix);
  let app: INestMicroservice;
  let server: RedisStreamsServer;
  let client: RedisStreamsClient;
  let redis: RawRedis;

  beforeAll(async () => {
    redis = rawRedis();
    ({ app, server, client } = await startConsumer(testConfig(prefix), [DeliveryController]));
  });

  afterAll(async () => {
    await client.close();
    await app.close();
    await cleanupPrefix(redis, prefix);
    redis.disconnect();
  });

  beforeEach(() => {
    received.length = 0;
  });

  it('delivers emit() to the @EventPattern handler with a full context, then acknowledges it', async () => {
    const entryId = await lastValueFrom(client.emit('orders.created', { orderId: 42, amount: 9.5 }));
    expect(entryId).toMatch(/^\d+-\d+$/);
    await waitFor(() => received.length === 1, { message: 'the event' });
    expect(received[0]).toMatchObject({
      data: { orderId: 42, amount: 9.5 },
      stream: keys.stream('orders.created'),
      entryId,
      group: 'svc',
      consumer: server.config.consumer.consumerName,
      deliveryCount: 1,
      pattern: 'orders.created',
    });
    await waitFor(async () => Number((await redis.xpending(keys.stream('orders.created'), 'svc'))[0]) === 0, {
      message: 'the entry to be acknowledged',
    });
  });

  it('carries headers and a producer message id from RedisStreamsRecordBuilder', async () => {
    const record = new RedisStreamsRecordBuilder({ orderId: 7 }).setHeaders({ tenant: 'acme' }).setMessageId('order-7').build();
    await lastValueFrom(client.emit('orders.created', record));
    await waitFor(() => received.length === 1);
    expect(received[0].data).toEqual({ orderId: 7 });
    expect(received[0].headers).toEqual({ tenant: 'acme' });
    expect(received[0].messageId).toBe('order-7');
  });

  it('answers send() from a @MessagePattern handler', async () => {
    await expect(lastValueFrom(client.send('math.sum', [1, 2, 3.5]))).resolves.toBe(6.5);
  });

  it('streams every value of an Observable reply, for object patterns too', async () => {
    await expect(lastValueFrom(client.send({ cmd: 'count-up' }, 4).pipe(toArray()))).resolves.toEqual([1, 2, 3, 4]);
  });

  it('returns a handler error to the caller as an error', async () => {
    const error = await lastValueFrom(client.send('math.fail', {})).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RemoteHandlerError);
    expect((error as RemoteHandlerError).message).toBe('division by zero');
    expect((error as RemoteHandlerError).status).toBe('bad-input');
  });

  it('fails a request with RequestTimeoutError when no reply comes in time', async () => {
    const shortClient = new RedisStreamsClient(testConfig(prefix, { client: { requestTimeoutMs: 300 } }));
    try {
      const error = await lastValueFrom(shortClient.send('math.slow', {})).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(RequestTimeoutError);
      expect(shortClient.pendingRequests).toBe(0);
    } finally {
      await shortClient.close();
    }
  });

  const hasHooks = typeof (Server.prototype as unknown as { runWithProcessingHooks?: unknown }).runWithProcessingHooks === 'function';
  (hasHooks ? it : it.skip)('runs Nest processing hooks (tracing) around each message when they are set (Nest 12)', async () => {
    const started: string[] = [];
    const ended: string[] = [];
    server.setOnProcessingStartHook((_transport, context, done) => {
      started.push((context as RedisStreamsContext).getPattern());
      return done();
    });
    server.setOnProcessingEndHook((_transport, context) => ended.push((context as RedisStreamsContext).getPattern()));
    try {
      await lastValueFrom(client.emit('orders.created', { orderId: 1 }));
      await waitFor(() => ended.includes('orders.created'), { message: 'the end hook' });
      expect(started).toContain('orders.created');
    } finally {
      server.setOnProcessingStartHook((_t, _c, done) => done());
      (server as unknown as { onProcessingEndHook?: unknown }).onProcessingEndHook = undefined;
    }
  });

  it('many concurrent requests each get their own reply', async () => {
    const results = await Promise.all(
      Array.from({ length: 200 }, (_, i) => lastValueFrom(client.send<number>('math.sum', [i, 1]))),
    );
    expect(results).toEqual(Array.from({ length: 200 }, (_, i) => i + 1));
  });
});
