import { decodeMessage, decodeReply, encodeMessage, encodeReply, parseJsonSafely, toWireError, validateDependencies, validateHeaders, validateMessageKey } from './envelope.js';
import { MessageDecodeError } from '../errors/message-decode.error.js';
import { InvalidMessageError } from '../errors/invalid-message.error.js';
import { InvalidUsageError } from '../errors/invalid-usage.error.js';
import { RedisStreamsError } from '../errors/redis-streams.error.js';
import { RedisStreamsContext } from '../transport/redis-streams.context.js';
import { RedisStreamsTransaction } from '../transport/redis-streams.transaction.js';
import { RpcException } from '@nestjs/microservices';

const fieldsOf = (list: string[]) => Object.fromEntries(list.reduce<[string, string][]>((acc, v, i) => (i % 2 ? acc : [...acc, [v, list[i + 1]]]), []));

describe('envelope', () => {
  it('round-trips a message', () => {
    const fields = fieldsOf(encodeMessage({ pattern: 'p', messageId: 'm1', json: '{"a":1}', headers: { tenant: 'x' }, replyTo: 'r' }));
    expect(decodeMessage('1-0', fields, 'p', 1_000)).toEqual({ pattern: 'p', messageId: 'm1', data: { a: 1 }, headers: { tenant: 'x' }, replyTo: 'r' });
  });

  it('writes a claim-check reference instead of data, and refuses to decode it unfetched', () => {
    const list = encodeMessage({ pattern: 'p', messageId: 'm1', json: '{"big":1}', blob: { id: 'b1', bytes: 9 } });
    const fields = fieldsOf(list);
    expect(fields).toMatchObject({ blob: 'b1', size: '9', pattern: 'p', id: 'm1' });
    expect(fields.data).toBeUndefined();
    expect(() => decodeMessage('1-0', fields, 'p', 1_000)).toThrow(/claim-checked payload \(blob "b1"\) was not fetched/);
    expect(decodeMessage('1-0', { ...fields, data: '{"big":1}' }, 'p', 1_000).data).toEqual({ big: 1 });
  });

  it('accepts a minimal hand-written entry (data only)', () => {
    expect(decodeMessage('5-1', { data: '[1,2]' }, 'orders', 1_000)).toMatchObject({ pattern: 'orders', messageId: '5-1', data: [1, 2] });
  });

  it('cannot be used to pollute prototypes', () => {
    const decoded = decodeMessage('1-0', { data: '{"a":{"__proto__":{"polluted":1}},"constructor":{"prototype":{"polluted":1}}}' }, 'p', 1_000);
    const merged = Object.assign({}, (decoded.data as { a: object }).a);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect((merged as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.keys(decoded.data as object)).toEqual(['a']);
    expect(parseJsonSafely('{"__proto__":{"x":1},"ok":true}')).toEqual({ ok: true });
  });

  it.each([
    [{ v: '2', data: '{}' }, /unknown wire version "2"/],
    [{ pattern: 'x' }, /no "data" field/],
    [{ data: '{not json' }, /not valid JSON/],
    [{ data: '"' + 'x'.repeat(2_000) + '"' }, /larger than streams.maxPayloadBytes/],
    [{ data: '{}', headers: '{"bad name":"x"}' }, /"headers" is invalid/],
    [{ data: '{}', headers: '{"n":1}' }, /must be a string/],
  ])('refuses %j with a reason', (fields, reason) => {
    expect(() => decodeMessage('1-0', fields as Record<string, string>, 'p', 1_000)).toThrow(MessageDecodeError);
    expect(() => decodeMessage('1-0', fields as Record<string, string>, 'p', 1_000)).toThrow(reason);
  });

  it('round-trips replies and errors without stacks', () => {
    expect(decodeReply(fieldsOf(encodeReply({ requestId: 'r', response: { x: 1 }, done: true })))).toEqual({ requestId: 'r', response: { x: 1 }, done: true });
    const err = decodeReply(fieldsOf(encodeReply({ requestId: 'r', err: toWireError(new TypeError('boom')), done: true })));
    expect(err?.err).toEqual({ name: 'TypeError', message: 'boom', code: undefined, status: undefined });
    expect(JSON.stringify(toWireError(new Error('x')))).not.toContain('at ');
  });

  it('keeps the payload of an RpcException', () => {
    expect(toWireError(new RpcException({ message: 'no funds', status: 402 }))).toMatchObject({ message: 'no funds', status: 402 });
    expect(toWireError({ status: 'error', message: 'Internal server error' })).toMatchObject({ message: 'Internal server error', status: 'error' });
  });
});

describe('what a producer may not send', () => {
  it('refuses bad headers and keys with InvalidMessageError, a RedisStreamsError naming the field', () => {
    const refused = (fn: () => unknown) => {
      try {
        fn();
      } catch (error) {
        return error;
      }
      return undefined;
    };
    const cases: [string, () => unknown][] = [
      ['headers', () => validateHeaders('tenant=acme')],
      ['headers', () => validateHeaders(Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`h${i}`, 'v'])))],
      ['headers', () => validateHeaders({ 'bad name': 'v' })],
      ['headers', () => validateHeaders({ 'x-n': 5 })],
      ['headers', () => validateHeaders({ big: 'x'.repeat(4_097) })],
      ['partitionKey', () => validateMessageKey('partitionKey', '')],
      ['idempotencyKey', () => validateMessageKey('idempotencyKey', 'k'.repeat(513))],
      ['dependsOn', () => validateDependencies(Array.from({ length: 101 }, (_, i) => `m${i}`))],
      ['dependsOn', () => validateDependencies(['ok', ''])],
    ];
    for (const [field, fn] of cases) {
      const error = refused(fn);
      expect(error).toBeInstanceOf(InvalidMessageError);
      expect(error).toBeInstanceOf(RedisStreamsError);
      expect(error).toMatchObject({ code: 'INVALID_MESSAGE', field });
    }
    expect(validateHeaders({ 'x.tenant-id_1': 'acme' })).toEqual({ 'x.tenant-id_1': 'acme' });
  });
});

describe('API misuse', () => {
  it('is an InvalidUsageError: transaction commands and contexts the transport did not make', async () => {
    const tx = new RedisStreamsTransaction();
    expect(() => tx.call('FLUSHALL', 'k')).toThrow(InvalidUsageError);
    expect(() => tx.call('SET', '')).toThrow(InvalidUsageError);
    const context = new RedisStreamsContext(['s', '1-0', 'g', 'c', 1, {}, 'p', 'm']);
    expect(() => context.transaction()).toThrow(InvalidUsageError);
    await expect(context.ack()).rejects.toMatchObject({ code: 'INVALID_USAGE' });
  });
});
