import type { RedisStreamsEnterpriseConfig } from 'nestjs-redis-streams-enterprise';

/**
 * The producer's transport configuration, from the environment:
 * - `REDIS_URL` (default `redis://127.0.0.1:6379`)
 * - `RSE_KEY_PREFIX` (default `demo`): must equal the consumer's, or the two talk past each other
 */
export function producerConfigFromEnv(env: NodeJS.ProcessEnv = process.env): RedisStreamsEnterpriseConfig {
  return {
    connection: { url: env.REDIS_URL || 'redis://127.0.0.1:6379', connectionName: 'example-producer' },
    streams: { keyPrefix: env.RSE_KEY_PREFIX || 'demo' },
    client: { requestTimeoutMs: 10_000 },
  };
}
