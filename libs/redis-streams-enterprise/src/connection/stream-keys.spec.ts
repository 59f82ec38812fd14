import { StreamKeys } from './stream-keys.js';
import { InvalidPatternError } from '../errors/invalid-pattern.error.js';

describe('StreamKeys', () => {
  const keys = new StreamKeys('app');

  it('puts every key of a pattern under one hash tag', () => {
    expect(keys.stream('orders.created')).toBe('app:{orders.created}');
    expect(keys.deadLetter('orders.created')).toBe('app:{orders.created}:dlq');
    expect(keys.retrySchedule('orders.created', 'billing')).toBe('app:{orders.created}:retry:billing');
    const tag = (key: string) => /\{([^}]*)\}/.exec(key)?.[1];
    expect(new Set([keys.stream('a'), keys.deadLetter('a'), keys.retrySchedule('a', 'g')].map(tag))).toEqual(new Set(['a']));
  });

  it('hashes patterns that would break the slot tag or readability', () => {
    const tag = keys.tagOf('{"cmd":"sum"}');
    expect(tag).toMatch(/^h\.[0-9a-f]{32}$/);
    expect(keys.tagOf('{"cmd":"sum"}')).toBe(tag);
    expect(keys.tagOf('with space')).not.toBe(keys.tagOf('with_space'));
    expect(keys.stream('{"cmd":"sum"}')).not.toContain('"');
  });

  it('refuses empty and oversized patterns', () => {
    expect(() => keys.stream('')).toThrow(InvalidPatternError);
    expect(() => keys.stream('x'.repeat(2_000))).toThrow(InvalidPatternError);
  });

  it('keeps claim-checked blobs and their indexes in the slot of the stream that refers to them', () => {
    const stream = keys.partition('orders.created', 3);
    expect(keys.blobOf(stream, 'b1')).toBe('app:{orders.created#3}:blob:b1');
    expect(keys.blobIndexOf(stream)).toBe('app:{orders.created#3}:blobs');
    expect(keys.blobIndexOf(keys.deadLetterOf(stream))).toBe('app:{orders.created#3}:dlq:blobs');
    // A blob id from the wire cannot break out of the slot tag or the prefix.
    expect(keys.blobOf(stream, '} x')).toMatch(/^app:\{orders\.created#3\}:blob:h\.[0-9a-f]{32}$/);
  });

  it('names reply streams per client', () => {
    expect(keys.replyStream('c1')).toBe('app:{reply:c1}');
  });

  it('tells its own reply streams from any other key a message could name', () => {
    expect(keys.isReplyStream(keys.replyStream('5f0c1e2a-8d7b-4c1a-9e3f-0a1b2c3d4e5f'))).toBe(true);
    for (const other of ['app:{orders}', 'app:{reply:}', 'app:{reply:a}:x', 'app:{reply:a}b}', 'app:{reply:a b}', 'other:{reply:a}', `app:{reply:${'x'.repeat(129)}}`, 'app:{reply:a\n}']) {
      expect(keys.isReplyStream(other)).toBe(false);
    }
  });
});
