import { Controller, Get, HttpCode, Post } from '@nestjs/common';
import { HealthCheck, HealthCheckService } from '@nestjs/terminus';
import { RedisStreamsHealthIndicator, RedisStreamsServer, type RedisStreamsReadinessThresholds } from 'nestjs-redis-streams-enterprise';

/** The paths the Kubernetes probes call (deploy/kubernetes/consumer.yaml; a test checks they match). */
export const HEALTH_PATHS = { live: '/health/live', ready: '/health/ready', drain: '/health/drain' } as const;

/**
 * Not ready while the oldest pending entry is older than this: handlers are stuck or far behind. Lag is left to the
 * autoscaler (KEDA's Redis Streams scaler) rather than readiness: an unready consumer still reads.
 */
export const READINESS: RedisStreamsReadinessThresholds = { maxOldestPendingMs: 5 * 60_000 };

/**
 * Liveness and readiness for Kubernetes (Terminus), and the drain a preStop hook calls. Serve it on a port that is
 * reachable inside the cluster only: `POST /health/drain` stops this consumer.
 */
@Controller('health')
export class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly streams: RedisStreamsHealthIndicator,
    private readonly server: RedisStreamsServer,
  ) {}

  /** Down when a reading loop or the reclaimer keeps failing or is stuck, Redis refuses a command, or Redis is mute. */
  @Get('live')
  @HealthCheck()
  live() {
    return this.health.check([() => this.streams.isLive()]);
  }

  /** Down while starting, reconnecting or draining, when not live, or past READINESS. */
  @Get('ready')
  @HealthCheck()
  ready() {
    return this.health.check([() => this.streams.isReady('redis-streams', READINESS)]);
  }

  /**
   * Stops intake (the preStop hook): reading stops, in-flight handlers finish (up to consumer.shutdownTimeoutMs) and
   * are acknowledged, readiness turns down; the SIGTERM that follows finds nothing left to do.
   */
  @Post('drain')
  @HttpCode(204)
  async drain(): Promise<void> {
    await this.server.close();
  }
}
