import { hashKey64, jumpHash, partitionForKey } from './jump-hash.js';

const keys = (count: number, prefix = 'key-'): string[] => Array.from({ length: count }, (_, i) => `${prefix}${i}`);

describe('hashKey64', () => {
  it('is the first 8 bytes of SHA-1, big-endian (golden values)', () => {
    // Computed independently (Python hashlib): a change here re-partitions every existing key.
    expect(hashKey64('')).toBe(0xda39a3ee5e6b4b0dn);
    expect(hashKey64('a')).toBe(0x86f7e437faa5a7fcn);
    expect(hashKey64('order-42')).toBe(0x43f332932e1bfe2an);
    expect(hashKey64('customer:1001')).toBe(0xbce7ff568cf40690n);
  });

  it('hashes the UTF-8 bytes of non-ASCII keys', () => {
    expect(hashKey64('héllo wörld 🚀')).toBe(0x8c3984d30219f98fn);
  });

  it('is deterministic and stays within 64 bits', () => {
    const all = keys(200);
    const hashes = all.map(hashKey64);
    expect(all.map(hashKey64)).toEqual(hashes);
    expect(hashes.filter((hash) => hash < 0n || hash >= 1n << 64n)).toEqual([]);
  });

  it('gives distinct values to similar keys', () => {
    const hashes = new Set(keys(10_000).map(hashKey64));
    expect(hashes.size).toBe(10_000);
  });
});

describe('jumpHash', () => {
  it('matches the reference implementation (vectors shared with other jump hash ports)', () => {
    expect(jumpHash(1n, 1)).toBe(0);
    expect(jumpHash(42n, 57)).toBe(43);
    expect(jumpHash(256n, 1024)).toBe(520);
    expect(jumpHash(0xdead10ccn, 1)).toBe(0);
    expect(jumpHash(0xdead10ccn, 666)).toBe(361);
    expect(jumpHash(16045690984833335023n, 255)).toBe(237);
  });

  it('reduces keys to 64 bits like a uint64_t', () => {
    expect(jumpHash(42n + (1n << 64n), 57)).toBe(43);
    expect(jumpHash(-1n, 100)).toBe(jumpHash((1n << 64n) - 1n, 100));
  });

  it('returns 0 for one bucket and stays in range', () => {
    const outOfRange: string[] = [];
    for (const key of keys(500)) {
      const hash = hashKey64(key);
      if (jumpHash(hash, 1) !== 0) outOfRange.push(`${key}/1`);
      for (const buckets of [2, 7, 16, 100, 10_000]) {
        const bucket = jumpHash(hash, buckets);
        if (!Number.isInteger(bucket) || bucket < 0 || bucket >= buckets) outOfRange.push(`${key}/${buckets}=${bucket}`);
      }
    }
    expect(outOfRange).toEqual([]);
  });

  it.each([0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY])('rejects %p buckets', (buckets) => {
    expect(() => jumpHash(1n, buckets)).toThrow(RangeError);
  });
});

describe('partitionForKey', () => {
  it('keeps fixed partitions for fixed keys (golden values)', () => {
    expect([1, 8, 9, 16, 64, 1000].map((n) => partitionForKey('order-42', n))).toEqual([0, 4, 4, 4, 25, 527]);
    expect([1, 8, 9, 16, 64, 1000].map((n) => partitionForKey('customer:1001', n))).toEqual([0, 1, 1, 15, 19, 459]);
    expect([1, 8, 9, 16, 64, 1000].map((n) => partitionForKey('a', n))).toEqual([0, 4, 4, 13, 32, 179]);
  });

  it('is deterministic', () => {
    const all = keys(1_000);
    expect(all.map((key) => partitionForKey(key, 16))).toEqual(all.map((key) => partitionForKey(key, 16)));
  });

  it('spreads 10,000 keys over 16 partitions within ±20% of the mean', () => {
    const counts = new Array<number>(16).fill(0);
    for (const key of keys(10_000)) counts[partitionForKey(key, 16)]++;
    const mean = 10_000 / 16;
    for (const count of counts) {
      expect(count).toBeGreaterThanOrEqual(mean * 0.8);
      expect(count).toBeLessThanOrEqual(mean * 1.2);
    }
  });

  it('growing 8 -> 9 moves about 1/9 of the keys, all into the new partition 8', () => {
    const all = keys(10_000, 'user:');
    const moved = all.filter((key) => partitionForKey(key, 8) !== partitionForKey(key, 9));
    expect(moved.filter((key) => partitionForKey(key, 9) !== 8)).toEqual([]);
    expect(moved.length / all.length).toBeGreaterThan(1 / 9 - 0.02);
    expect(moved.length / all.length).toBeLessThan(1 / 9 + 0.02);
  });

  it('shrinking 9 -> 8 moves only the keys of partition 8', () => {
    const wrong = keys(10_000, 'user:').filter((key) => {
      const before = partitionForKey(key, 9);
      const after = partitionForKey(key, 8);
      return before === 8 ? after >= 8 : after !== before;
    });
    expect(wrong).toEqual([]);
  });

  it('moves keys only to the new partition across a range of growth steps', () => {
    const hashes = keys(1_000, 'k').map(hashKey64);
    const violations: string[] = [];
    for (let n = 1; n < 40; n++) {
      for (const hash of hashes) {
        const before = jumpHash(hash, n);
        const after = jumpHash(hash, n + 1);
        if (after !== n && after !== before) violations.push(`${hash}: ${n}->${n + 1} moved ${before}->${after}`);
      }
    }
    expect(violations).toEqual([]);
  });
});
