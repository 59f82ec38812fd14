import { InvalidOptionsError } from '../errors/invalid-options.error.js';
import { PartitionKeyMissingError } from '../errors/partition-key-missing.error.js';
import { RedisStreamsError } from '../errors/redis-streams.error.js';
import { partitionForKey } from './jump-hash.js';
import {
  HashPartitioner,
  KeyBasedPartitioner,
  Partitioner,
  type PartitionerOptions,
  type PartitionInput,
  RoundRobinPartitioner,
  createPartitioner,
  extractKey,
} from './partitioner.js';

const input = (o: Partial<PartitionInput> = {}): PartitionInput => ({ pattern: 'orders.created', data: {}, ...o });
const partitionsOf = (partitioner: Partitioner, calls: number, count: number, o: Partial<PartitionInput> = {}): number[] =>
  Array.from({ length: calls }, () => partitioner.choose(input(o), count).partition);

describe('extractKey', () => {
  it('reads a top-level field', () => {
    expect(extractKey({ customerId: 'c-1' }, { partitionKey: 'customerId' })).toBe('c-1');
  });

  it('follows a dot path', () => {
    expect(extractKey({ customer: { id: 'c-7' } }, { partitionKey: 'customer.id' })).toBe('c-7');
    expect(extractKey({ a: { b: { c: 3 } } }, { partitionKey: 'a.b.c' })).toBe('3');
    expect(extractKey({ items: ['x', 'y'] }, { partitionKey: 'items.1' })).toBe('y');
  });

  it('turns numbers, bigints and booleans into strings', () => {
    expect(extractKey({ id: 42 }, { partitionKey: 'id' })).toBe('42');
    expect(extractKey({ id: 0 }, { partitionKey: 'id' })).toBe('0');
    expect(extractKey({ id: 12345678901234567890n }, { partitionKey: 'id' })).toBe('12345678901234567890');
    expect(extractKey({ id: false }, { partitionKey: 'id' })).toBe('false');
  });

  it.each([
    ['an object', { id: { nested: 1 } }],
    ['an array', { id: [1, 2] }],
    ['null', { id: null }],
    ['undefined', { id: undefined }],
    ['an empty string', { id: '' }],
    ['a function', { id: () => 'k' }],
    ['a symbol', { id: Symbol('k') }],
  ])('gives no key when the field is %s', (_what, data) => {
    expect(extractKey(data, { partitionKey: 'id' })).toBeUndefined();
  });

  it('gives no key for a missing field or path', () => {
    expect(extractKey({ other: 1 }, { partitionKey: 'id' })).toBeUndefined();
    expect(extractKey({ customer: 'c-1' }, { partitionKey: 'customer.id' })).toBeUndefined();
    expect(extractKey({ customer: null }, { partitionKey: 'customer.id' })).toBeUndefined();
  });

  it.each([null, undefined, 'text', 42, true])('gives no key for a non-object payload (%p)', (data) => {
    expect(extractKey(data, { partitionKey: 'id' })).toBeUndefined();
  });

  it('gives no key without a field or extractor', () => {
    expect(extractKey({ id: 'x' }, {})).toBeUndefined();
  });

  it('never reads inherited properties', () => {
    const data = Object.create({ id: 'inherited' }) as object;
    expect(extractKey(data, { partitionKey: 'id' })).toBeUndefined();
    expect(extractKey({}, { partitionKey: 'toString' })).toBeUndefined();
    expect(extractKey({}, { partitionKey: 'hasOwnProperty' })).toBeUndefined();
    class Order {
      get id(): string {
        return 'from-getter';
      }
    }
    expect(extractKey(new Order(), { partitionKey: 'id' })).toBeUndefined();
  });

  it.each(['__proto__', 'constructor', 'prototype', 'a.__proto__.x', 'constructor.name', 'a.prototype'])(
    'refuses the prototype path %p even when such an own property exists',
    (path) => {
      const data = JSON.parse(
        '{"__proto__":{"x":"polluted"},"constructor":{"name":"c"},"prototype":"p","a":{"__proto__":{"x":"y"},"prototype":"q"}}',
      ) as unknown;
      expect(extractKey(data, { partitionKey: path })).toBeUndefined();
    },
  );

  it('gives no key for empty path segments', () => {
    expect(extractKey({ '': 'x', a: { '': 'y' } }, { partitionKey: '' })).toBeUndefined();
    expect(extractKey({ a: { '': 'y' } }, { partitionKey: 'a.' })).toBeUndefined();
  });

  it('prefers the extractor, stringifying its result', () => {
    const partitionKeyExtractor = (m: unknown) => (m as { tenant: number }).tenant;
    expect(extractKey({ tenant: 9, id: 'field' }, { partitionKey: 'id', partitionKeyExtractor })).toBe('9');
  });

  it.each([undefined, null, ''])('falls back to the field when the extractor returns %p', (result) => {
    const partitionKeyExtractor = () => result;
    expect(extractKey({ id: 'field' }, { partitionKey: 'id', partitionKeyExtractor })).toBe('field');
    expect(extractKey({ id: 'field' }, { partitionKeyExtractor })).toBeUndefined();
  });

  it('gives no key when an untyped extractor returns an object', () => {
    const partitionKeyExtractor = (() => ({ not: 'a key' })) as unknown as () => string;
    expect(extractKey({}, { partitionKeyExtractor })).toBeUndefined();
  });

  it('passes the payload to the extractor and lets its error reach the caller', () => {
    const payload = { id: 1 };
    const seen: unknown[] = [];
    extractKey(payload, { partitionKeyExtractor: (m) => (seen.push(m), 'k') });
    expect(seen).toEqual([payload]);
    const failure = new Error('extractor failed');
    expect(() =>
      extractKey(payload, {
        partitionKeyExtractor: () => {
          throw failure;
        },
      }),
    ).toThrow(failure);
  });
});

describe('HashPartitioner', () => {
  const options = { partitionKey: 'customer.id' };

  it('hashes the explicit key before anything else', () => {
    const choice = new HashPartitioner(options).choose(
      input({ key: 'explicit', data: { customer: { id: 'c-1' } }, idempotencyKey: 'idem' }),
      16,
    );
    expect(choice).toEqual({ partition: partitionForKey('explicit', 16), key: 'explicit' });
  });

  it('hashes the payload key when there is no explicit key', () => {
    const choice = new HashPartitioner(options).choose(input({ data: { customer: { id: 'c-1' } }, idempotencyKey: 'i' }), 16);
    expect(choice).toEqual({ partition: partitionForKey('c-1', 16), key: 'c-1' });
  });

  it('falls back to the idempotency key', () => {
    const choice = new HashPartitioner(options).choose(input({ data: {}, idempotencyKey: 'idem-1' }), 16);
    expect(choice).toEqual({ partition: partitionForKey('idem-1', 16), key: 'idem-1' });
  });

  it('treats an empty explicit or idempotency key as absent', () => {
    const choice = new HashPartitioner(options).choose(input({ key: '', data: { customer: { id: 'c-1' } } }), 16);
    expect(choice.key).toBe('c-1');
    expect(new HashPartitioner().choose(input({ key: '', idempotencyKey: '' }), 4)).toEqual({ partition: 0 });
  });

  it('sends one key to one partition every time', () => {
    const partitioner = new HashPartitioner(options);
    const seen = new Set(partitionsOf(partitioner, 50, 16, { data: { customer: { id: 'steady' } } }));
    expect(seen.size).toBe(1);
  });

  it('rotates keyless messages round robin, without a key in the choice', () => {
    const partitioner = new HashPartitioner(options);
    expect(partitionsOf(partitioner, 7, 3)).toEqual([0, 1, 2, 0, 1, 2, 0]);
    expect(partitioner.choose(input(), 3)).toEqual({ partition: 1 });
  });

  it('does not advance the rotation for keyed messages', () => {
    const partitioner = new HashPartitioner(options);
    partitioner.choose(input(), 4);
    partitioner.choose(input({ key: 'k' }), 4);
    expect(partitioner.choose(input(), 4).partition).toBe(1);
  });

  it('keeps its rotation per instance', () => {
    const a = new HashPartitioner();
    const b = new HashPartitioner();
    partitionsOf(a, 3, 8);
    expect(b.choose(input(), 8).partition).toBe(0);
    expect(a.choose(input(), 8).partition).toBe(3);
  });

  it('stays in range when the partition count changes between calls', () => {
    const partitioner = new HashPartitioner();
    expect(partitionsOf(partitioner, 5, 8)).toEqual([0, 1, 2, 3, 4]);
    expect(partitionsOf(partitioner, 3, 2)).toEqual([1, 0, 1]);
    expect(partitionsOf(partitioner, 3, 8)).toEqual([2, 3, 4]);
  });

  it.each([0, -1, 2.5, Number.NaN])('rejects a partition count of %p', (count) => {
    expect(() => new HashPartitioner().choose(input(), count)).toThrow(RangeError);
    expect(() => new HashPartitioner().choose(input({ key: 'k' }), count)).toThrow(RangeError);
  });
});

describe('RoundRobinPartitioner', () => {
  it('rotates over all partitions, ignoring payload fields', () => {
    const partitioner = new RoundRobinPartitioner();
    expect(partitionsOf(partitioner, 6, 4, { data: { customer: { id: 'c-1' } } })).toEqual([0, 1, 2, 3, 0, 1]);
  });

  it('spreads evenly', () => {
    const counts = new Array<number>(5).fill(0);
    for (const p of partitionsOf(new RoundRobinPartitioner(), 1_000, 5)) counts[p]++;
    expect(counts).toEqual([200, 200, 200, 200, 200]);
  });

  it('still hashes an explicit key (affinity asked for by the caller)', () => {
    const partitioner = new RoundRobinPartitioner();
    expect(partitioner.choose(input({ key: 'k-1', idempotencyKey: 'i' }), 16)).toEqual({
      partition: partitionForKey('k-1', 16),
      key: 'k-1',
    });
  });

  it('still hashes an idempotency key, so duplicates land in one partition', () => {
    const partitioner = new RoundRobinPartitioner();
    const seen = new Set(partitionsOf(partitioner, 20, 16, { idempotencyKey: 'dup-1' }));
    expect([...seen]).toEqual([partitionForKey('dup-1', 16)]);
  });

  it('keeps its rotation per instance and skips keyed messages', () => {
    const a = new RoundRobinPartitioner();
    const b = new RoundRobinPartitioner();
    a.choose(input(), 4);
    a.choose(input({ key: 'k' }), 4);
    expect(a.choose(input(), 4).partition).toBe(1);
    expect(b.choose(input(), 4).partition).toBe(0);
  });
});

describe('KeyBasedPartitioner', () => {
  it('uses the explicit key, then the payload key, then the idempotency key', () => {
    const partitioner = new KeyBasedPartitioner({ partitionKey: 'id' });
    expect(partitioner.choose(input({ key: 'e', data: { id: 'p' }, idempotencyKey: 'i' }), 8).key).toBe('e');
    expect(partitioner.choose(input({ data: { id: 'p' }, idempotencyKey: 'i' }), 8).key).toBe('p');
    expect(partitioner.choose(input({ data: {}, idempotencyKey: 'i' }), 8)).toEqual({
      partition: partitionForKey('i', 8),
      key: 'i',
    });
  });

  it('uses the extractor', () => {
    const partitioner = new KeyBasedPartitioner({ partitionKeyExtractor: (m) => (m as { t: string }).t });
    expect(partitioner.choose(input({ data: { t: 'tenant-3' } }), 8)).toEqual({
      partition: partitionForKey('tenant-3', 8),
      key: 'tenant-3',
    });
  });

  it('refuses a message without any key', () => {
    const partitioner = new KeyBasedPartitioner({ partitionKey: 'customer.id' });
    let caught: unknown;
    try {
      partitioner.choose(input({ data: { customer: {} } }), 8);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(PartitionKeyMissingError);
    expect(caught).toBeInstanceOf(RedisStreamsError);
    const error = caught as PartitionKeyMissingError;
    expect(error.name).toBe('PartitionKeyMissingError');
    expect(error.code).toBe('PARTITION_KEY_MISSING');
    expect(error.pattern).toBe('orders.created');
    expect(error.partitionKeyField).toBe('customer.id');
    expect(error.hasExtractor).toBe(false);
    expect(error.message).toContain('"orders.created"');
    expect(error.message).toContain('payload field "customer.id"');
  });

  it('names what it tried in the error', () => {
    const withExtractor = new KeyBasedPartitioner({ partitionKeyExtractor: () => undefined });
    expect(() => withExtractor.choose(input(), 8)).toThrow(/partitionKeyExtractor returned no key/);
    expect(() => new KeyBasedPartitioner().choose(input(), 8)).toThrow(/neither partitioning.partitionKey nor/);
  });
});

describe('createPartitioner', () => {
  it.each([
    ['hash', HashPartitioner],
    ['dynamic', HashPartitioner],
    ['roundRobin', RoundRobinPartitioner],
    ['keyBased', KeyBasedPartitioner],
  ] as const)('builds %s as %p', (strategy, type) => {
    const partitioner = createPartitioner({ strategy });
    expect(partitioner).toBeInstanceOf(type);
    expect(partitioner).toBeInstanceOf(Partitioner);
  });

  it('passes the key options on', () => {
    const data = { order: { customer: 'c-9' } };
    for (const strategy of ['hash', 'dynamic', 'keyBased'] as const) {
      expect(createPartitioner({ strategy, partitionKey: 'order.customer' }).choose(input({ data }), 16)).toEqual({
        partition: partitionForKey('c-9', 16),
        key: 'c-9',
      });
      expect(createPartitioner({ strategy, partitionKeyExtractor: () => 5 }).choose(input({ data }), 16).key).toBe('5');
    }
  });

  it('gives every call its own rotation', () => {
    const a = createPartitioner({ strategy: 'roundRobin' });
    const b = createPartitioner({ strategy: 'roundRobin' });
    a.choose(input(), 4);
    expect(b.choose(input(), 4).partition).toBe(0);
  });

  it('refuses an unknown strategy', () => {
    const options = { strategy: 'random' } as unknown as PartitionerOptions;
    expect(() => createPartitioner(options)).toThrow(InvalidOptionsError);
    expect(() => createPartitioner(options)).toThrow(/partitioning.strategy must be one of/);
  });
});
