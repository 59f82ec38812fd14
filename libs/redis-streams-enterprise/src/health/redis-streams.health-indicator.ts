import { Injectable, Optional } from '@nestjs/common';
import { ModuleRef } from '@nestjs/core';
import { RedisStreamsServer } from '../transport/redis-streams.server.js';
import type { RedisStreamsServerStatus } from '../transport/server-status.js';
import { withinMs } from '../runtime/within-ms.js';
import { thresholdReasons, type RedisStreamsReadinessThresholds } from './health-thresholds.js';
import { loadHealthIndicatorService, type HealthIndicatorServiceLike } from './terminus-loader.js';

/** A Terminus indicator result: `{ [key]: { status: 'up' | 'down', ... } }`. */
// `any` as in Terminus's own HealthIndicatorResult: with `unknown` it is not assignable to a HealthIndicatorFunction's result.
export type RedisStreamsHealthResult = Record<string, { status: 'up' | 'down'; [data: string]: any }>;

/** Options of both checks. */
export interface RedisStreamsHealthCheckOptions {
  /** Longest wait for the server's status (Redis round trips); longer counts as Redis not answering. @default 3000 */
  readonly timeoutMs?: number;
}

const DEFAULT_KEY = 'redis-streams';
const DEFAULT_TIMEOUT_MS = 3_000;

/**
 * A `@nestjs/terminus` health indicator for `RedisStreamsServer` (Terminus is an optional peer, loaded on the first
 * check; Terminus 11 and 12). Add it to the providers of a module that imports `TerminusModule` and
 * `RedisStreamsEnterpriseModule`:
 *
 * ```ts
 * @Get('live') @HealthCheck() live() { return this.health.check([() => this.streams.isLive()]); }
 * @Get('ready') @HealthCheck() ready() { return this.health.check([() => this.streams.isReady('redis-streams', { maxLag: 10_000 })]); }
 * ```
 *
 * Down results carry `reasons` (and `message`: the reasons joined), the same sentences as
 * `RedisStreamsServer.getStatus()`: a loop that keeps failing (NOPERM, NOSCRIPT, OOM) or is stuck, a command Redis
 * refuses for lack of ACL rights, Redis not answering, not listening, draining on shutdown, a threshold exceeded.
 */
@Injectable()
export class RedisStreamsHealthIndicator {
  private indicators?: Promise<HealthIndicatorServiceLike>;

  constructor(
    private readonly server: RedisStreamsServer,
    @Optional() private readonly moduleRef?: ModuleRef,
  ) {}

  /**
   * Liveness: the reading loops and the reclaimer run and are neither failing again and again nor stuck, Redis
   * refuses no command for lack of rights, and Redis answers. For a liveness probe (a restart or an operator fixes it).
   * @throws OptionalDependencyMissingError when @nestjs/terminus is not installed.
   */
  async isLive(key: string = DEFAULT_KEY, options: RedisStreamsHealthCheckOptions = {}): Promise<RedisStreamsHealthResult> {
    const status = await this.status(options);
    const session = (await this.indicatorService()).check(key);
    if (!status) return session.down(this.downData([`Redis did not answer within ${this.timeoutOf(options)} ms`])) as RedisStreamsHealthResult;
    const details = summary(status);
    return (status.liveness.ok ? session.up(details) : session.down({ ...details, ...this.downData(status.liveness.reasons) })) as RedisStreamsHealthResult;
  }

  /**
   * Readiness: live, listening with every connection ready, not draining on shutdown, and every consumed stream under
   * the thresholds (lag, pending, age of the oldest pending entry).
   * @throws OptionalDependencyMissingError when @nestjs/terminus is not installed.
   */
  async isReady(
    key: string = DEFAULT_KEY,
    thresholds: RedisStreamsReadinessThresholds & RedisStreamsHealthCheckOptions = {},
  ): Promise<RedisStreamsHealthResult> {
    const status = await this.status(thresholds);
    const session = (await this.indicatorService()).check(key);
    if (!status) return session.down(this.downData([`Redis did not answer within ${this.timeoutOf(thresholds)} ms`])) as RedisStreamsHealthResult;
    const reasons = [...status.readiness.reasons, ...thresholdReasons(status, thresholds)];
    const details = summary(status);
    return (reasons.length === 0 ? session.up(details) : session.down({ ...details, ...this.downData(reasons) })) as RedisStreamsHealthResult;
  }

  private downData(reasons: readonly string[]): Record<string, unknown> {
    return { message: reasons.join('; '), reasons };
  }

  private timeoutOf(options: RedisStreamsHealthCheckOptions): number {
    return options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  }

  /** The server's status, or undefined when it took longer than the timeout (a Redis that does not answer). */
  private status(options: RedisStreamsHealthCheckOptions): Promise<RedisStreamsServerStatus | undefined> {
    return withinMs(this.server.getStatus(), this.timeoutOf(options));
  }

  /** The app's HealthIndicatorService (TerminusModule provides it), else one of our own. */
  private indicatorService(): Promise<HealthIndicatorServiceLike> {
    this.indicators ??= loadHealthIndicatorService().then((Service) => {
      try {
        return this.moduleRef?.get(Service, { strict: false }) ?? new Service();
      } catch {
        return new Service(); // TerminusModule not imported where ModuleRef can see it: the service is stateless enough
      }
    });
    this.indicators.catch(() => (this.indicators = undefined)); // a failed load is retried at the next check
    return this.indicators;
  }
}

/** What an up or down result shows besides the reasons: small, no payloads. */
function summary(status: RedisStreamsServerStatus): Record<string, unknown> {
  return {
    state: status.status,
    group: status.group,
    consumer: status.consumer,
    inFlight: status.inFlight,
    streams: status.streams.map((s) => ({ stream: s.stream, lag: s.lag, pending: s.pending, oldestPendingMs: s.oldestPendingMs })),
    ...(status.warnings.length > 0 ? { warnings: status.warnings } : {}),
  };
}
