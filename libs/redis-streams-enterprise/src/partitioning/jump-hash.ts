import { createHash } from 'node:crypto';

/**
 * Multiplier of the 64-bit linear congruential generator used by jump consistent hash
 * (Lamping & Veach, "A Fast, Minimal Memory, Consistent Hash Algorithm", 2014).
 */
const JUMP_LCG_MULTIPLIER = 2862933555777941757n;

/** 2^31 as a double: the scale of the 31 random bits the generator yields per step. */
const TWO_POW_31 = 2_147_483_648;

/**
 * Stable 64-bit hash of a UTF-8 string: the first 8 bytes of its SHA-1 digest, read big-endian.
 *
 * Why SHA-1: the partition of a key is shared state between every producer and consumer of a topic,
 * possibly on different machines and Node versions, so the hash must never change. SHA-1 is a fixed
 * standard (FIPS 180-4) computed by OpenSSL in every Node release, needs no hand-written bit
 * arithmetic that could drift, and gives full avalanche, so near-identical keys (`order-1`,
 * `order-2`) spread as well as random ones. A hand-written FNV-1a 64 was rejected: its avalanche is
 * incomplete (a change in the last byte passes through a single multiply) and in BigInt it is no
 * faster. It is not used for security; a collision only puts two keys in one partition. Cost is
 * about a microsecond per key.
 *
 * Strings are encoded as UTF-8 (lone surrogates become U+FFFD, as Buffer.from does everywhere).
 */
export function hashKey64(key: string): bigint {
  return createHash('sha1').update(key, 'utf8').digest().readBigUInt64BE(0);
}

/**
 * Jump consistent hash: maps a 64-bit key to a bucket in `[0, buckets)` such that growing from
 * n to n+1 buckets moves only ~1/(n+1) of the keys, all of them into the new bucket n.
 *
 * The key seeds a 64-bit LCG; each step draws the next bucket at which the key would "jump", and
 * the last jump below `buckets` is its bucket. Arithmetic is BigInt, wrapped to 64 bits as the
 * paper's C++ `uint64_t` does, so the result is identical to other implementations.
 *
 * @param key any bigint; it is reduced to its low 64 bits (two's complement for negatives).
 * @param buckets integer >= 1.
 * @throws RangeError when `buckets` is not an integer >= 1 (callers pass validated options).
 */
export function jumpHash(key: bigint, buckets: number): number {
  if (!Number.isSafeInteger(buckets) || buckets < 1) {
    throw new RangeError(`jumpHash buckets must be an integer >= 1, got ${buckets}`);
  }
  let state = BigInt.asUintN(64, key);
  let bucket = -1;
  let next = 0;
  while (next < buckets) {
    bucket = next;
    state = BigInt.asUintN(64, state * JUMP_LCG_MULTIPLIER + 1n);
    // The top 31 bits of the state are exact in a double; the C++ cast to int64 truncates, and
    // every operand here is positive, so Math.floor is the same truncation.
    next = Math.floor((bucket + 1) * (TWO_POW_31 / (Number(state >> 33n) + 1)));
  }
  return bucket;
}

/** Partition in `[0, partitionCount)` of a string key: `jumpHash(hashKey64(key), partitionCount)`. */
export function partitionForKey(key: string, partitionCount: number): number {
  return jumpHash(hashKey64(key), partitionCount);
}
