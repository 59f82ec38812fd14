import type { RedisStreamsEnterpriseConfig } from 'nestjs-redis-streams-enterprise';

/**
 * The consumer's transport configuration, from the environment:
 * - `REDIS_URL` (default `redis://127.0.0.1:6379`)
 * - `RSE_KEY_PREFIX` (default `demo`): every key the transport writes starts with `<prefix>:`
 * - `RSE_CONSUMER_NAME` (default: host-pid-random, unique per process)
 */
export function consumerConfigFromEnv(env: NodeJS.ProcessEnv = process.env): RedisStreamsEnterpriseConfig {
  return {
    connection: { url: env.REDIS_URL || 'redis://127.0.0.1:6379', connectionName: 'example-consumer' },
    streams: { keyPrefix: env.RSE_KEY_PREFIX || 'demo' },
    consumer: {
      group: 'billing',
      ...(env.RSE_CONSUMER_NAME ? { consumerName: env.RSE_CONSUMER_NAME } : {}),
      // Short enough that SIGTERM during a handler does not hold the process for long.
      shutdownTimeoutMs: 5_000,
    },
    retry: { attempts: 3, backoff: { type: 'exponential', delayMs: 200, maxDelayMs: 5_000, jitter: 0.2 } },
    // Metrics into prom-client's default registry, served on /metrics (metrics.controller.ts); spans when the process
    // registers an OpenTelemetry SDK (without one, tracing costs nothing).
    observability: { tracing: { enabled: true }, metrics: { prometheus: true } },
  };
}

/**
 * Port of the HTTP side (health probes, metrics): `PORT` (the Kubernetes example sets 3000). Unset, a free port is
 * picked (printed in the ready line), so several consumers run side by side on one machine (the demo).
 */
export function httpPortFromEnv(env: NodeJS.ProcessEnv = process.env): number {
  const port = Number(env.PORT);
  return env.PORT !== undefined && Number.isInteger(port) && port >= 0 && port < 65_536 ? port : 0;
}
