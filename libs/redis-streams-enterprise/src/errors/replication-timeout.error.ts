import { RedisStreamsError } from './redis-streams.error.js';

/**
 * A publish was stored on the primary but fewer replicas than `connection.waitReplicas` confirmed it in time.
 * The entry exists (`entryId`) and will normally be delivered; a failover before it replicates would lose it.
 */
export class ReplicationTimeoutError extends RedisStreamsError {
  constructor(
    readonly entryId: string,
    readonly replicasConfirmed: number,
    readonly replicasRequired: number,
    /** `cause`: why confirming failed, when WAIT itself could not be run (the connection dropped after the write). */
    options?: { readonly cause?: unknown },
  ) {
    super(
      'REPLICATION_TIMEOUT',
      `Entry ${entryId} was confirmed by ${replicasConfirmed} of ${replicasRequired} replicas within ` +
        `connection.waitTimeoutMs; it is stored on the primary but a failover now could lose it`,
      options,
    );
  }
}
