import { Inject, Injectable, Logger, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import type { RedisStreamsEnterpriseConfig, ResolvedRedisStreamsConfig } from '../config/redis-streams.options.js';
import { resolveConfig } from '../config/validate-options.js';
import { LazyConnection } from '../connection/lazy-connection.js';
import { InvalidUsageError } from '../errors/invalid-usage.error.js';
import type { GaugeSample } from '../observability/metric-source.js';
import { REDIS_STREAMS_OPTIONS } from '../redis-streams.constants.js';
import { createTelemetry, type Telemetry } from '../telemetry/telemetry.js';
import { MirrorLink, type MirrorLinkStatus } from './mirror-link.js';
import type { MirroredStreamStatus } from './mirror-stream.js';

/** `StreamMirror.getStatus()`. */
export interface StreamMirrorStatus {
  /** True while every mirror runs (from `start()` until `close()`). */
  readonly running: boolean;
  /** This deployment's region (`replication.region`). */
  readonly region: string | null;
  /** Every mirrored stream of every mirror. */
  readonly topics: readonly MirroredStreamStatus[];
  /** Each mirror's own state: failing, refused topics. */
  readonly mirrors: readonly MirrorLinkStatus[];
}

/** How often the lag of the mirrored streams is read from the sources. */
const LAG_INTERVAL_MS = 1_000;

/**
 * Cross-region replication: copies topics of other regions' deployments (`replication.mirrors`) into this one (the
 * deployment of `connection`), so this region's consumers see the other regions' messages.
 *
 * Guarantees (see docs/features/replication.md): every source entry born in the source region is appended to the
 * target stream exactly once, also across crashes and restarts of the mirror, of either Redis and cuts of the link
 * (each batch and its checkpoint are written by one script that refuses a batch not following the stored
 * checkpoint); entries keep their order per stream (and so per partition, and per key); an entry is never mirrored
 * back to a region it came from (active-active and full meshes do not loop). Copies get new entry ids and carry
 * `rse.origin` and `rse.origin.id`. Lag is reported per stream.
 *
 * In a Nest app (`RedisStreamsEnterpriseModule.forRoot({ replication: { region: 'eu', mirrors: [...] } })`) it
 * starts with the application when mirrors are configured, and stops with it; standalone:
 * ```ts
 * const mirror = new StreamMirror({ connection: { url: 'redis://eu:6379' }, replication: { region: 'eu',
 *   mirrors: [{ name: 'from-us', source: { region: 'us', connection: { url: 'redis://us:6379' } }, topics: ['orders.*'] }] } });
 * await mirror.start();
 * ```
 */
@Injectable()
export class StreamMirror implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(StreamMirror.name);
  readonly config: ResolvedRedisStreamsConfig;
  private readonly target: LazyConnection;
  /** Exports the lag and copy count of every mirrored stream as gauges when observability.metrics exports. */
  private telemetry?: Telemetry;
  private links: MirrorLink[] = [];
  private starting?: Promise<void>;
  private closed = false;

  /** @throws InvalidOptionsError listing every invalid field (with its path). */
  constructor(@Inject(REDIS_STREAMS_OPTIONS) config: RedisStreamsEnterpriseConfig | ResolvedRedisStreamsConfig) {
    this.config = resolveConfig(config);
    this.target = new LazyConnection(this.config.connection, 'mirror', StreamMirror.name);
  }

  /** Starts the configured mirrors with the application (nothing happens when there are none). */
  async onApplicationBootstrap(): Promise<void> {
    if (this.config.replication.mirrors.length > 0) await this.start();
  }

  async onApplicationShutdown(): Promise<void> {
    await this.close();
  }

  /**
   * Connects to this region and every source, finds the topics, and starts copying. Idempotent while running. A
   * region that cannot be reached does not fail the start: `getStatus().mirrors[].failing` says so while the mirror
   * keeps trying (the layout check of its topics then happens once it is reached).
   * @throws MirrorRefusedError when a topic's partition layout differs between two regions (nothing is started);
   *   InvalidUsageError after close() or without mirrors.
   */
  start(): Promise<void> {
    if (this.closed) return Promise.reject(new InvalidUsageError('StreamMirror.start() after close(): create a new StreamMirror'));
    if (this.config.replication.mirrors.length === 0) {
      return Promise.reject(new InvalidUsageError('StreamMirror.start() without mirrors: configure replication.mirrors'));
    }
    this.starting ??= this.startLinks().catch(async (error: unknown) => {
      this.starting = undefined;
      await this.stopLinks();
      this.links = [];
      throw error;
    });
    return this.starting;
  }

  private async startLinks(): Promise<void> {
    const { replication, streams } = this.config;
    this.links = replication.mirrors.map((mirror) => new MirrorLink(mirror, () => this.target.get(), streams.keyPrefix, LAG_INTERVAL_MS));
    await Promise.all(this.links.map((link) => link.start()));
    // Made on start only: an application without mirrors gets nothing from it.
    this.telemetry ??= createTelemetry(this.config);
    this.telemetry.start('', () => Promise.resolve(this.gauges()));
    this.logger.log(`Mirroring into region ${replication.region}: ${this.links.map((l) => `"${l.options.name}" from ${l.options.source.region}`).join(', ')}`);
  }

  /** What every mirror copies, with lag and counts per stream. */
  getStatus(): StreamMirrorStatus {
    const mirrors = this.links.map((link) => link.status());
    return {
      running: mirrors.length > 0 && mirrors.every((m) => m.running),
      region: this.config.replication.region ?? null,
      topics: mirrors.flatMap((m) => m.topics),
      mirrors,
    };
  }

  /** `mirror_lag_messages`, `mirror_copied_messages` and `mirror_missed_messages` per mirrored stream (labels: mirror, source_region, stream). */
  private gauges(): GaugeSample[] {
    return this.links.flatMap((link) =>
      link.status().topics.flatMap((t) => {
        const labels = { mirror: t.mirror, source_region: link.options.source.region, stream: t.target };
        const copied: GaugeSample = { name: 'mirror_copied_messages', labels, value: t.copied };
        const missed: GaugeSample = { name: 'mirror_missed_messages', labels, value: t.missed };
        return t.lag === null ? [copied, missed] : [copied, missed, { name: 'mirror_lag_messages', labels, value: t.lag }];
      }),
    );
  }

  /** Stops every mirror after the batch in progress and closes the connections. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.telemetry?.stop();
    await this.starting?.catch(() => undefined);
    await this.stopLinks();
    await this.target.close();
  }

  private async stopLinks(): Promise<void> {
    // The links stay listed, so getStatus() after close() still shows the last counts (with running false).
    await Promise.all(this.links.map((link) => link.close()));
  }
}
