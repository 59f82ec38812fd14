import { Controller } from '@nestjs/common';
import { Ctx, EventPattern, MessagePattern, Payload } from '@nestjs/microservices';
import type { INestMicroservice } from '@nestjs/common';
import { lastValueFrom } from 'rxjs';
import { PayloadTooLargeError, RedisStreamsClient, RedisStreamsContext, type RedisStreamsServer } from 'nestjs-redis-streams-enterprise';
import { startConsumer, testConfig } from '../support/nest-apps.js';
import { cleanupPrefix, rawRedis, uniquePrefix, type RawRedis } from '../support/redis.js';
import { testKeys } from '../support/keys.js';
import { waitFor } from '../support/wait-for.js';

const received: { data: unknown; pattern: string; messageId: string }[] = [];
const quoted: unknown[] = [];

@Controller()
class InteropController {
  @EventPattern<string>('payments.settled')
  onSettled(@Payload() data: unknown, @Ctx() ctx: RedisStreamsContext) {
    received.push({ data, pattern: ctx.getPattern(), messageId: ctx.getMessageId() });
  }

  @MessagePattern<string>('payments.quote')
  quote(@Payload() data: number[]) {
    quoted.push(data);
    return data.reduce((a, b) => a + b, 0);
  }
}

const dlqFields = async (redis: RawRedis, key: string) =>
  (await redis.xrange(key, '-', '+')).map(([id, list]) => {
    const fields: Record<string, string> = {};
    for (let i = 0; i < list.length; i += 2) fields[list[i]] = list[i + 1];
    return { id, fields };
  });

describe('wire format and bad input (real Redis)', () => {
  const prefix = uniquePrefix('interop');
  const keys = testKeys(prefix);
  const stream = keys.stream('payments.settled');
  const dlq = keys.deadLetter('payments.settled');
  let app: INestMicroservice;
  let server: RedisStreamsServer;
  let client: RedisStreamsClient;
  let redis: RawRedis;

  beforeAll(async () => {
    redis = rawRedis();
    ({ app, server, client } = await startConsumer(testConfig(prefix, { streams: { maxPayloadBytes: 10_000 } }), [InteropController]));
  });

  afterAll(async () => {
    await client.close();
    await app.close();
    await cleanupPrefix(redis, prefix);
    redis.disconnect();
  });

  beforeEach(async () => {
    received.length = 0;
    await redis.del(dlq);
  });

  it('a producer in another language can XADD a message by hand', async () => {
    const id = await redis.xadd(stream, '*', 'data', JSON.stringify({ paymentId: 'p-1', cents: 1250 }));
    await waitFor(() => received.length === 1, { message: 'the hand-written message' });
    expect(received[0]).toEqual({ data: { paymentId: 'p-1', cents: 1250 }, pattern: 'payments.settled', messageId: id });
  });

  it('field names such as __proto__ are ignored, not applied', async () => {
    await redis.xadd(stream, '*', '__proto__', '{"polluted":true}', 'constructor', 'x', 'data', '{"ok":1}');
    await waitFor(() => received.length === 1);
    expect(received[0].data).toEqual({ ok: 1 });
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('a JSON payload cannot pollute prototypes', async () => {
    await redis.xadd(stream, '*', 'data', '{"user":{"__proto__":{"isAdmin":true}},"constructor":{"prototype":{"isAdmin":true}}}');
    await waitFor(() => received.length === 1);
    const data = received[0].data as { user: object };
    expect(({} as Record<string, unknown>).isAdmin).toBeUndefined();
    expect((Object.assign({}, data.user) as Record<string, unknown>).isAdmin).toBeUndefined();
    expect(Object.getPrototypeOf(data.user)).toBe(Object.prototype);
  });

  it.each([
    ['malformed JSON', ['data', '{"paymentId":'], /not valid JSON/],
    ['an unknown wire version', ['v', '9', 'data', '{}'], /unknown wire version "9"/],
    ['no data field', ['payload', '{}'], /no "data" field/],
    ['an oversized payload', ['data', JSON.stringify('x'.repeat(20_000))], /larger than streams.maxPayloadBytes/],
    ['a 10 MB field', ['data', 'y'.repeat(10 * 1024 * 1024)], /larger than streams.maxPayloadBytes/],
    ['binary bytes', ['data', Buffer.from([0xff, 0xfe, 0x00, 0x81, 0x7b]).toString('latin1')], /not valid JSON/],
    ['invalid headers', ['data', '{}', 'headers', '{"x":{"nested":true}}'], /"headers" is invalid/],
  ])('parks %s in the dead-letter stream with the reason, and keeps consuming', async (_name, fields, reason) => {
    const badId = await redis.xadd(stream, '*', ...(fields as string[]));
    await redis.xadd(stream, '*', 'data', '{"after":true}');
    await waitFor(() => received.length === 1, { message: 'the next good message' });
    expect(received[0].data).toEqual({ after: true });
    await waitFor(async () => (await redis.xlen(dlq)) === 1, { message: 'the dead letter' });
    const [letter] = await dlqFields(redis, dlq);
    expect(letter.fields['rse.dlq.reason']).toBe('decode-failed');
    expect(letter.fields['rse.dlq.originalId']).toBe(badId);
    expect(letter.fields['rse.dlq.group']).toBe('svc');
    expect(letter.fields['rse.dlq.errorName']).toBe('MessageDecodeError');
    expect(letter.fields['rse.dlq.errorMessage']).toMatch(reason);
    // the original fields travel with the dead letter, so nothing is lost
    expect(letter.fields[(fields as string[])[0]]).toBe((fields as string[])[1]);
    expect(Number((await redis.xpending(stream, 'svc'))[0])).toBe(0);
  });

  it("a request's replyTo must be a reply stream of this deployment: a forged one is dead-lettered and nothing is written there", async () => {
    const requests = keys.stream('payments.quote');
    const victims = ['victim:{orders}', keys.stream('payments.settled'), `${prefix}:{reply:a}:x`, `${prefix}:{reply:}`, `other:{reply:abc}`];
    for (const [i, replyTo] of victims.entries()) {
      await redis.xadd(requests, '*', 'data', '[1,2]', 'id', `rq-${i}`, 'replyTo', replyTo);
    }
    await waitFor(async () => (await redis.xlen(keys.deadLetter('payments.quote'))) === victims.length, { message: 'the forged requests dead-lettered' });
    const letters = await dlqFields(redis, keys.deadLetter('payments.quote'));
    expect(letters.map((l) => l.fields['rse.dlq.reason'])).toEqual(victims.map(() => 'invalid-reply-to'));
    expect(letters[0].fields['rse.dlq.errorName']).toBe('InvalidReplyAddressError');
    expect(letters[0].fields['rse.dlq.errorMessage']).toContain('replyTo "victim:{orders}" is not a reply stream of this deployment');
    expect(await redis.exists('victim:{orders}', `${prefix}:{reply:a}:x`, `${prefix}:{reply:}`, 'other:{reply:abc}')).toBe(0);
    expect(quoted).toEqual([]);
    expect(received).toEqual([]); // nothing reached payments.settled either
    // The library's own requests still get their answer.
    expect(await lastValueFrom(client.send('payments.quote', [20, 22]))).toBe(42);
  });

  it('parks a message whose pattern has no handler', async () => {
    await redis.xadd(stream, '*', 'pattern', 'payments.unknown', 'data', '{}');
    await waitFor(async () => (await redis.xlen(dlq)) === 1, { message: 'the dead letter' });
    const [letter] = await dlqFields(redis, dlq);
    expect(letter.fields['rse.dlq.reason']).toBe('no-handler');
    expect(letter.fields['rse.dlq.errorMessage']).toContain('payments.unknown');
  });

  it('refuses an oversized payload at emit and writes nothing', async () => {
    const before = await redis.xlen(stream);
    const error = await lastValueFrom(client.emit('payments.settled', { blob: 'x'.repeat(20_000) })).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PayloadTooLargeError);
    expect((error as PayloadTooLargeError).message).toContain('streams.maxPayloadBytes');
    expect(await redis.xlen(stream)).toBe(before);
  });

  it('counts dead letters in the metrics', () => {
    expect(server.getMetrics().deadLettered).toBeGreaterThanOrEqual(5);
  });
});
