import { ConfigValidator, validateOptions } from './validate-options.js';
import { developmentConfig, productionConfig, RedisConfigFactory } from './presets.js';
import { InvalidOptionsError } from '../errors/invalid-options.error.js';
import type { RedisStreamsEnterpriseConfig } from './redis-streams.options.js';

describe('validateOptions', () => {
  it('fills every default when given nothing', () => {
    const config = validateOptions(undefined);
    expect(config.connection.url).toBe('redis://127.0.0.1:6379');
    expect(config.streams).toMatchObject({ keyPrefix: 'rse', maxPayloadBytes: 1_048_576 });
    expect(config.consumer).toMatchObject({ group: 'default', groupStartId: '0', batchSize: 64, blockMs: 2_000, concurrency: 64, claimIdleMs: 30_000 });
    expect(config.consumer.consumerName).toMatch(/^[A-Za-z0-9._-]+-\d+-[0-9a-f]{8}$/);
    expect(config.retry).toMatchObject({ attempts: 3, backoff: { type: 'exponential', delayMs: 1_000, maxDelayMs: 60_000, jitter: 0.2 } });
    expect(config.ordering).toMatchObject({ enabled: false, strategy: 'none', maxConcurrency: 10, timeoutMs: 30_000, retryAttempts: 3 });
    expect(config.partitioning).toMatchObject({ enabled: false, strategy: 'hash', partitionCount: 16, rebalanceInterval: 60_000 });
    expect(config.schema).toMatchObject({ enabled: false, registry: 'redis', validationMode: 'strict', versioningStrategy: 'semantic', maxVersions: 10 });
    expect(config.replay).toMatchObject({ enabled: false, maxReplayMessages: 100_000, replayTimeout: 300_000, batchSize: 100, compression: false });
  });

  it('keeps nested defaults when a section is given in part', () => {
    const config = validateOptions({ retry: { backoff: { delayMs: 5 } }, consumer: { group: 'billing' } });
    expect(config.retry.backoff).toMatchObject({ type: 'exponential', delayMs: 5, maxDelayMs: 60_000 });
    expect(config.retry.attempts).toBe(3);
    expect(config.consumer.group).toBe('billing');
    expect(config.consumer.blockMs).toBe(2_000);
  });

  it('defaults the claim-check threshold to 1 MiB, accepts 0 (off) and refuses negative or oversized values', () => {
    expect(validateOptions(undefined).streams.claimCheckThresholdBytes).toBe(1_048_576);
    expect(validateOptions({ streams: { claimCheckThresholdBytes: 0 } }).streams.claimCheckThresholdBytes).toBe(0);
    const result = ConfigValidator.validateConfig({ streams: { claimCheckThresholdBytes: -1, maxPayloadBytes: 1024 ** 3 } });
    expect(result.errors.map((e) => `${e.path}:${e.rule}`).sort()).toEqual(['streams.claimCheckThresholdBytes:min', 'streams.maxPayloadBytes:max']);
  });

  it("defaults streams.trimming to 'safe' and refuses an unknown mode or 'hard' without a limit", () => {
    expect(validateOptions({ streams: { maxLen: 1_000 } }).streams.trimming).toBe('safe');
    expect(validateOptions({ streams: { retentionMs: 60_000, trimming: 'hard' } }).streams.trimming).toBe('hard');
    const unknown = ConfigValidator.validateConfig({ streams: { maxLen: 1_000, trimming: 'lossy' as never } });
    expect(unknown.errors.map((e) => `${e.path}:${e.rule}`)).toEqual(['streams.trimming:isIn']);
    const noLimit = ConfigValidator.validateConfig({ streams: { trimming: 'hard' } });
    expect(noLimit.errors.map((e) => `${e.path}:${e.rule}`)).toEqual(['streams.trimming:needsLimit']);
  });

  it('gives each resolved config its own unique consumer name', () => {
    expect(validateOptions({}).consumer.consumerName).not.toBe(validateOptions({}).consumer.consumerName);
  });

  it('names the path and the rule of every violation', () => {
    const result = ConfigValidator.validateConfig({
      consumer: { blockMs: 120_000, group: 'has space' },
      retry: { backoff: { jitter: 2 } },
      connection: { url: 'http://nope' },
    } as RedisStreamsEnterpriseConfig);
    expect(result.valid).toBe(false);
    const byPath = Object.fromEntries(result.errors.map((e) => [e.path, e]));
    expect(byPath['consumer.blockMs']).toMatchObject({ rule: 'max', message: 'consumer.blockMs must not be greater than 60000' });
    expect(byPath['consumer.group'].rule).toBe('matches');
    expect(byPath['retry.backoff.jitter'].rule).toBe('max');
    expect(byPath['connection.url'].message).toBe('connection.url must be a redis:// or rediss:// URL');
  });

  it('refuses unknown fields (typos) with their path', () => {
    const result = ConfigValidator.validateConfig({ consumer: { blockMS: 10 } } as unknown as RedisStreamsEnterpriseConfig);
    expect(result.errors).toEqual([
      { path: 'consumer.blockMS', rule: 'whitelistValidation', message: 'consumer.blockMS is not a known option (check for a typo)' },
    ]);
  });

  it('checks rules across fields', () => {
    const result = ConfigValidator.validateConfig({
      partitioning: { minPartitions: 8, maxPartitions: 4, partitionCount: 16 },
      consumer: { batchSize: 100, concurrency: 10 },
    });
    expect(result.errors.map((e) => e.path).sort()).toEqual(['consumer.batchSize', 'partitioning.minPartitions', 'partitioning.partitionCount']);
  });

  it('throws one InvalidOptionsError that lists every violation', () => {
    let error: unknown;
    try {
      validateOptions({ consumer: { blockMs: -1, concurrency: 0 } });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(InvalidOptionsError);
    const invalid = error as InvalidOptionsError;
    expect(invalid.code).toBe('INVALID_OPTIONS');
    expect(invalid.violations.map((v) => v.path).sort()).toEqual(['consumer.blockMs', 'consumer.concurrency']);
    expect(invalid.message).toContain('consumer.blockMs must not be less than 1');
  });

  it('passes functions and ioredis options through untouched, and checks the extractor is a function', () => {
    const extractor = (m: unknown) => String((m as { userId: string }).userId);
    const tls = { ca: Buffer.from('x') };
    const config = validateOptions({ partitioning: { partitionKeyExtractor: extractor }, connection: { options: { tls, db: 2 } } });
    expect(config.partitioning.partitionKeyExtractor).toBe(extractor);
    expect(config.connection.options?.tls).toBe(tls);
    const bad = ConfigValidator.validateConfig({ partitioning: { partitionKeyExtractor: 'userId' as never } });
    expect(bad.errors).toEqual([expect.objectContaining({ path: 'partitioning.partitionKeyExtractor', rule: 'isFunction' })]);
  });

  it('never echoes a secret value in an error', () => {
    const result = ConfigValidator.validateConfig({ connection: { url: 'mysql://user:s3cret@host' } });
    expect(JSON.stringify(result.errors)).not.toContain('s3cret');
  });

  it('returns a frozen configuration', () => {
    const config = validateOptions({});
    expect(Object.isFrozen(config)).toBe(true);
    expect(Object.isFrozen(config.consumer)).toBe(true);
  });

  it('rejects a configuration that is not an object', () => {
    expect(ConfigValidator.validateConfig(42 as never).errors[0].path).toBe('(root)');
  });
});

describe('presets and RedisConfigFactory', () => {
  it('development and production presets are valid', () => {
    expect(ConfigValidator.validateConfig(developmentConfig).errors).toEqual([]);
    expect(ConfigValidator.validateConfig(productionConfig).errors).toEqual([]);
  });

  it('createCustomConfig deep-merges without dropping nested defaults of the base', () => {
    const custom = RedisConfigFactory.createCustomConfig(productionConfig, {
      consumer: { group: 'payments' },
      retry: { backoff: { delayMs: 10 } },
      partitioning: { partitionCount: 32 },
    });
    expect(custom.consumer).toMatchObject({ group: 'payments', claimIdleMs: 60_000, concurrency: 64 });
    expect(custom.retry).toMatchObject({ attempts: 5, backoff: { type: 'exponential', delayMs: 10, maxDelayMs: 300_000 } });
    expect(custom.partitioning?.partitionCount).toBe(32);
    expect(productionConfig.retry?.backoff?.delayMs).toBe(1_000);
  });

  it('ignores prototype-polluting keys in overrides', () => {
    const evil = JSON.parse('{"__proto__": {"polluted": true}, "consumer": {"group": "x"}}') as RedisStreamsEnterpriseConfig;
    const merged = RedisConfigFactory.createCustomConfig({}, evil);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(merged.consumer?.group).toBe('x');
  });
});
