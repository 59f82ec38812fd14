import { decodeMessage, decodeReply, encodeMessage, encodeReply, parseJsonSafely, toWireError } from './envelope.js';
import { MessageDecodeError } from '../errors/message-decode.error.js';
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
