import { describe, expect, it } from '@jest/globals';
import { RecentKeys } from './recent-keys.js';

describe('RecentKeys', () => {
  it('keeps the most recent keys up to its limit, forgetting the oldest', () => {
    const keys = new RecentKeys(2);
    keys.add('a');
    keys.add('b');
    expect([keys.has('a'), keys.has('b')]).toEqual([true, true]);
    keys.add('c');
    expect([keys.has('a'), keys.has('b'), keys.has('c')]).toEqual([false, true, true]);
  });

  it('a key added again counts as the most recent', () => {
    const keys = new RecentKeys(2);
    keys.add('a');
    keys.add('b');
    keys.add('a');
    keys.add('c');
    expect([keys.has('a'), keys.has('b'), keys.has('c')]).toEqual([true, false, true]);
  });
});
