import { RedisStreamsError } from './redis-streams.error.js';

/** Why `startTestRedis()` could not start a throw-away redis-server. */
export type TestRedisStartFailure = 'not-installed' | 'exited' | 'timeout';

/**
 * `startTestRedis()` (`nestjs-redis-streams-enterprise/testing`) was given no Redis URL and could not start a
 * throw-away `redis-server`: it is not installed, it exited at start, or it did not accept connections in time.
 */
export class TestRedisStartError extends RedisStreamsError {
  constructor(
    readonly reason: TestRedisStartFailure,
    detail: string,
    options?: { readonly cause?: unknown },
  ) {
    super(
      'TEST_REDIS_START_FAILED',
      `Cannot start a test Redis: ${detail}; install redis-server (Debian/Ubuntu: apt-get install redis-server; ` +
        `macOS: brew install redis) or point REDIS_URL at a Redis the tests may use (e.g. docker compose up -d redis, ` +
        `REDIS_URL=redis://127.0.0.1:6379)`,
      options,
    );
  }
}
