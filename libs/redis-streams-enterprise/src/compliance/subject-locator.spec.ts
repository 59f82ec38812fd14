import { StreamKeys } from '../connection/stream-keys.js';
import { classifyKey } from './stream-catalog.js';
import { isAboutSubject, SubjectLocator, topicFilter, valueAt } from './subject-locator.js';

describe('SubjectLocator', () => {
  const locator = new SubjectLocator({ 'orders.*': { field: 'customer.id' }, 'orders.refunded': { header: 'x-subject' }, '*.created': { field: 'userId' } });

  it('prefers an exact pattern over globs, and the first listed glob', () => {
    expect(locator.locate('orders.refunded')).toEqual({ header: 'x-subject' });
    expect(locator.locate('orders.created')).toEqual({ field: 'customer.id' });
    expect(locator.locate('users.created')).toEqual({ field: 'userId' });
    expect(locator.locate('audit')).toBeUndefined();
    expect(new SubjectLocator({}).isEmpty).toBe(true);
  });

  it('matches strings exactly and numbers by their text, only through own properties', () => {
    const field = { field: 'customer.id' } as const;
    expect(isAboutSubject(field, { data: { customer: { id: 'c-1' } }, headers: {} }, 'c-1')).toBe(true);
    expect(isAboutSubject(field, { data: { customer: { id: 42 } }, headers: {} }, '42')).toBe(true);
    expect(isAboutSubject(field, { data: { customer: { id: 'c-10' } }, headers: {} }, 'c-1')).toBe(false);
    expect(isAboutSubject(field, { data: { customer: { id: { nested: 'c-1' } } }, headers: {} }, 'c-1')).toBe(false);
    expect(valueAt(Object.create({ inherited: 'x' }), 'inherited')).toBeUndefined();
    expect(isAboutSubject({ header: 'x-subject' }, { headers: { 'x-subject': 'c-1' } }, 'c-1')).toBe(true);
    expect(isAboutSubject({ header: 'toString' }, { headers: {} }, 'c-1')).toBe(false);
  });

  it('filters topics by globs', () => {
    expect(topicFilter(undefined)).toBeUndefined();
    const filter = topicFilter(['orders.*', 'users.created'])!;
    expect([filter('orders.created'), filter('users.created'), filter('users.deleted')]).toEqual([true, true, false]);
  });
});

describe('classifyKey', () => {
  const keys = new StreamKeys('rse');

  it('names topic streams, partitions and dead letters, and nothing else', () => {
    expect(classifyKey(keys, 'rse:{orders}')).toEqual({ key: 'rse:{orders}', kind: 'live', owner: 'rse:{orders}', pattern: 'orders' });
    expect(classifyKey(keys, 'rse:{orders#3}:dlq')).toEqual({ key: 'rse:{orders#3}:dlq', kind: 'dead-letter', owner: 'rse:{orders#3}', pattern: 'orders', partition: 3 });
    const hashed = keys.stream('{"cmd":"sum"}');
    expect(classifyKey(keys, hashed)).toEqual({ key: hashed, kind: 'live', owner: hashed });
    for (const other of ['rse:{#audit}', 'rse:{#doorbell}', 'rse:{reply:abc}', 'rse:{orders}:retry:g', 'other:{orders}', 'rse:{schema:x}:versions', 'rse:{}']) {
      expect(classifyKey(keys, other)).toBeNull();
    }
  });
});
