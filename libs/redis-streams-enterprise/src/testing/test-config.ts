import { randomBytes } from 'node:crypto';
import type { RedisStreamsEnterpriseConfig } from '../config/redis-streams.options.js';
import { InvalidOptionsError } from '../errors/invalid-options.error.js';
import type { TestRedis } from './test-redis.js';

/** What `testConfig()` may be told besides the configuration. */
export interface TestConfigOptions {
  /** Key prefix to use instead of a new `testKeyPrefix()`. @default testKeyPrefix() */
  readonly keyPrefix?: string;
}

/** Labels allowed in `testKeyPrefix(label)`: what `streams.keyPrefix` accepts, with room for the random part. */
const LABEL = /^[A-Za-z0-9._:-]{1,40}$/;

/**
 * A key prefix no other test (file, worker or run) shares: `<label>:<12 hex digits>`, e.g. `test:5f0c1a9be2d4`.
 * @default label 'test'
 * @throws InvalidOptionsError when the label is not 1-40 characters of A-Z a-z 0-9 . _ : -
 */
export function testKeyPrefix(label = 'test'): string {
  if (!LABEL.test(label)) {
    throw new InvalidOptionsError([
      { path: 'streams.keyPrefix', rule: 'testKeyPrefix', message: `testKeyPrefix label "${label}" must be 1-40 characters of A-Z a-z 0-9 . _ : -` },
    ]);
  }
  return `${label}:${randomBytes(6).toString('hex')}`;
}

/**
 * The module options for one test: `config` (e.g. the app's own) pointed at the test Redis (`connection.url`;
 * a `connection.cluster` is dropped) with an isolated `streams.keyPrefix` (`testKeyPrefix()` unless given).
 * Everything else of `config` is kept as it is.
 *
 * ```ts
 * const config = testConfig(redis, { consumer: { group: 'billing' }, retry: { attempts: 2 } });
 * const moduleRef = await Test.createTestingModule({ imports: [RedisStreamsEnterpriseModule.forRoot(config)], … }).compile();
 * ```
 */
export function testConfig(
  redis: Pick<TestRedis, 'url'> | string,
  config: RedisStreamsEnterpriseConfig = {},
  options: TestConfigOptions = {},
): RedisStreamsEnterpriseConfig {
  const connection = { ...config.connection, url: typeof redis === 'string' ? redis : redis.url };
  delete connection.cluster;
  return {
    ...config,
    connection,
    streams: { ...config.streams, keyPrefix: options.keyPrefix ?? testKeyPrefix() },
  };
}
