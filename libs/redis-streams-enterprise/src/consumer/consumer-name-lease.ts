/**
 * At most one live instance per consumer name in a group. Redis keeps one pending list per consumer name, and a
 * server takes back "its own" pending entries on start (a restart under a stable name): two live instances with one
 * name would each take the other's in-flight entries and handle them twice. So a server holds a presence lease on
 * its name while it runs:
 *
 *   key    StreamKeys.consumerNameLease(group, name)   (one key, used alone: any Cluster slot)
 *   value  '<host>/<pid>/<random>' of this instance    (the random part tells two instances on one host apart)
 *   ttl    consumer.nameLeaseMs, renewed every third of it (compare-and-renew script), deleted on close() only while
 *          it still holds our value (compare-and-delete script)
 *
 * - listen(): SET NX PX. Taken: wait (polling) up to nameLeaseMs for it, since a crashed predecessor's lease expires
 *   by then; still taken: ConsumerNameInUseError, nothing read.
 * - Renewal found the lease gone (expired while Redis was unreachable or the event loop stalled, or lost in a
 *   restart or failover): take it again with SET NX; nobody can have used the name in between without holding it.
 * - Renewal found another instance's value: a twin started while our lease had lapsed. `onLost` is called once and
 *   the server stops reading: it can no longer tell its entries from the twin's.
 * - Renewal failed (Redis unreachable): retried on the next tick, logged once. Reading is stalled too then; when
 *   Redis answers again the next renewal settles which of the cases above holds.
 */
import { Logger } from '@nestjs/common';
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { ConsumerOptions } from '../config/consumer.options.js';
import type { ScriptedRedis } from '../connection/scripts.js';
import type { StreamKeys } from '../connection/stream-keys.js';
import { ConnectionClosedError } from '../errors/connection-closed.error.js';
import { ConsumerNameInUseError } from '../errors/consumer-name-in-use.error.js';
import { errorText, logIds } from '../observability/log-format.js';
import { BackgroundLoop } from '../runtime/background-loop.js';
import { Sleeper } from '../runtime/sleeper.js';
import { withinMs } from '../runtime/within-ms.js';

/** How often a start that found its name taken looks again. */
const POLL_MS = 200;

export class ConsumerNameLease {
  private readonly logger = new Logger('RedisStreamsConsumerName');
  /** This instance's lease value. */
  readonly token = `${hostname().slice(0, 60)}/${process.pid}/${randomBytes(8).toString('hex')}`;
  private held = false;
  private stopped = false;
  /** Renews every third of ttlMs (after the previous renewal ended); a failed renewal is logged once. */
  private readonly renewals: BackgroundLoop;
  private readonly sleeper = new Sleeper();
  private readonly settings: { readonly key: string; readonly group: string; readonly consumerName: string; readonly ttlMs: number };

  constructor(
    private readonly redis: ScriptedRedis,
    consumer: Pick<ConsumerOptions, 'group' | 'consumerName' | 'nameLeaseMs'>,
    keys: StreamKeys,
    /** Another instance holds the name now: stop reading. Called at most once. */
    private readonly onLost: (error: ConsumerNameInUseError) => void,
  ) {
    const { group, consumerName, nameLeaseMs } = consumer;
    this.settings = { key: keys.consumerNameLease(group, consumerName), group, consumerName, ttlMs: nameLeaseMs };
    this.renewals = new BackgroundLoop(() => this.renew(), {
      intervalMs: Math.max(1, Math.floor(nameLeaseMs / 3)),
      onFailing: (error) => this.logger.warn(`Renewing the consumer name lease failed, will retry: ${errorText(error)} ${this.ids()}`),
      onRecovered: () => this.logger.log(`Consumer name lease renewed again ${this.ids()}`),
    });
  }

  /**
   * Takes the lease, waiting up to ttlMs for a previous holder's lease to expire, then renews it on a timer.
   * @throws ConsumerNameInUseError when another instance still holds the name after that wait.
   * @throws ConnectionClosedError when stop() was called meanwhile.
   */
  async acquire(): Promise<void> {
    const { key, ttlMs } = this.settings;
    const started = Date.now();
    // A crashed holder renewed at most ttlMs ago, so its lease is gone by then; one more poll covers clock granularity.
    const deadline = started + ttlMs + POLL_MS;
    for (let attempt = 0; ; attempt++) {
      if (this.stopped) throw new ConnectionClosedError('RedisStreamsServer');
      if ((await this.redis.set(key, this.token, 'PX', ttlMs, 'NX')) === 'OK') break;
      const holder = (await this.redis.get(key)) ?? undefined;
      if (Date.now() >= deadline) throw new ConsumerNameInUseError(this.settings.group, this.settings.consumerName, holder, Date.now() - started);
      if (attempt === 0) {
        this.logger.warn(
          `Consumer name in use by ${holder ?? 'another instance'}; waiting up to ${ttlMs} ms (consumer.nameLeaseMs) for ` +
            `its lease to expire (a previous instance that stopped without closing) ${this.ids()}`,
        );
      }
      await this.sleeper.sleep(Math.min(POLL_MS, Math.max(1, deadline - Date.now())));
    }
    this.held = true;
    if (!this.stopped) this.renewals.start('afterInterval');
  }

  /**
   * Stops renewing and deletes the lease if we still hold it (a twin's lease is never touched), waiting at most
   * `timeoutMs`. Never throws: a lease that could not be deleted is free again after nameLeaseMs.
   */
  async release(timeoutMs: number): Promise<void> {
    this.stop();
    const released = (async () => {
      await this.renewals.stop(); // a renewal in progress ends first
      if (!this.held) return;
      this.held = false;
      await this.redis.rseReleaseLease(this.settings.key, this.token);
    })().catch((error: unknown) => {
      this.logger.warn(`Releasing the consumer name failed; it is free again after consumer.nameLeaseMs: ${errorText(error)} ${this.ids()}`);
    });
    await withinMs(released, timeoutMs);
  }

  /**
   * Stops renewing and keeps the lease until it expires: for a close() that left handlers running, so a restart under
   * the same name cannot take back their entries while they still run.
   */
  stop(): void {
    this.stopped = true;
    void this.renewals.stop(); // not awaited: renew() itself calls stop() when the name was lost
    this.sleeper.wake();
  }

  /** Renewed or taken again: resolves (the loop reports a recovery); unreachable: rejects (the loop reports it once). */
  private async renew(): Promise<void> {
    const { key, ttlMs } = this.settings;
    if (Number(await this.redis.rseRenewLease(key, this.token, ttlMs)) === 1) return;
    // Not ours any more: gone (take it again), or another instance's (lost).
    if ((await this.redis.set(key, this.token, 'PX', ttlMs, 'NX')) === 'OK') {
      this.logger.warn(`Consumer name lease had expired (Redis unreachable, restarted or failed over?); taken again ${this.ids()}`);
      return;
    }
    if (this.stopped) return;
    const holder = (await this.redis.get(key)) ?? undefined;
    this.held = false;
    this.stop();
    this.onLost(new ConsumerNameInUseError(this.settings.group, this.settings.consumerName, holder, 0));
  }

  private ids(): string {
    return logIds({ group: this.settings.group, consumer: this.settings.consumerName });
  }
}
