/**
 * nestjs-redis-streams-enterprise/testing: helpers for testing handlers against a real Redis, for any test runner.
 * - `startTestRedis()`: REDIS_URL, or a throw-away redis-server on a free loopback port (`stop()` kills it);
 * - `testConfig()` / `testKeyPrefix()`: module options with an isolated key prefix per test;
 * - `RedisStreamsTestHarness`: `emitAndWait()` until the message was handled or dead-lettered, `cleanup()` of the
 *   prefix's keys (SCAN + UNLINK, never FLUSHALL).
 * Everything public is exported here by name.
 */
import 'reflect-metadata';

export { startTestRedis, type TestRedis, type StartTestRedisOptions } from './test-redis.js';
export { testConfig, testKeyPrefix, type TestConfigOptions } from './test-config.js';
export { deleteKeysWithPrefix } from './prefix-cleanup.js';
export { RedisStreamsTestHarness, type RedisStreamsTestHarnessOptions, type SettleOptions } from './redis-streams.test-harness.js';
export { type SettledMessage, type SettlementOutcome } from './settlement-probe.js';
export { SettlementTimeoutError } from '../errors/settlement-timeout.error.js';
export { TestRedisStartError, type TestRedisStartFailure } from '../errors/test-redis-start.error.js';
