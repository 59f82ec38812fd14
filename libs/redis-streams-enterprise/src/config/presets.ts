import type { RedisStreamsEnterpriseConfig } from './redis-streams.options.js';

const isMergeable = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' &&
  value !== null &&
  !Array.isArray(value) &&
  (Object.getPrototypeOf(value) === Object.prototype || Object.getPrototypeOf(value) === null);

/** Deep merge of plain objects: arrays, functions and class instances in `override` replace what `base` had. */
export function deepMerge<T>(base: T, override: unknown): T {
  if (!isMergeable(base) || !isMergeable(override)) return (override === undefined ? base : override) as T;
  const out: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(override)) {
    if (key === '__proto__' || key === 'constructor' || key === 'prototype') continue;
    if (value === undefined) continue;
    out[key] = deepMerge(out[key], value);
  }
  return out as T;
}

/** Settings for a laptop: short timeouts, quick retries, small dead-letter streams. */
export const developmentConfig: Readonly<RedisStreamsEnterpriseConfig> = Object.freeze({
  connection: { url: 'redis://127.0.0.1:6379' },
  streams: { keyPrefix: 'dev', maxLen: 100_000 },
  consumer: { group: 'dev', batchSize: 32, blockMs: 1_000, concurrency: 32, claimIdleMs: 10_000, shutdownTimeoutMs: 3_000 },
  retry: { attempts: 3, backoff: { type: 'exponential', delayMs: 200, maxDelayMs: 5_000, jitter: 0.2 } },
  deadLetter: { enabled: true, maxLen: 10_000 },
  client: { requestTimeoutMs: 10_000 },
}) as RedisStreamsEnterpriseConfig;

/**
 * Settings for production: no length trimming of main streams (retention is a decision, not a default), longer
 * claim times, patient retries, large dead-letter streams. The feature sections (ordering, partitioning, schema,
 * replay) stay off until the capabilities that implement them are switched on explicitly.
 */
export const productionConfig: Readonly<RedisStreamsEnterpriseConfig> = Object.freeze({
  streams: { keyPrefix: 'rse', maxPayloadBytes: 1_048_576 },
  consumer: { batchSize: 64, blockMs: 5_000, concurrency: 64, claimIdleMs: 60_000, reclaimIntervalMs: 5_000, shutdownTimeoutMs: 25_000 },
  retry: { attempts: 5, backoff: { type: 'exponential', delayMs: 1_000, maxDelayMs: 300_000, jitter: 0.3 } },
  deadLetter: { enabled: true, maxLen: 1_000_000 },
  client: { requestTimeoutMs: 30_000, maxPendingRequests: 10_000 },
}) as RedisStreamsEnterpriseConfig;

/** Builds configurations from a preset, as in the seed document. */
export class RedisConfigFactory {
  /** Deep-merges `overrides` over `base` (nested sections merge field by field; arrays and functions replace). */
  static createCustomConfig(
    base: RedisStreamsEnterpriseConfig,
    overrides: RedisStreamsEnterpriseConfig,
  ): RedisStreamsEnterpriseConfig {
    return deepMerge(base, overrides);
  }
}
