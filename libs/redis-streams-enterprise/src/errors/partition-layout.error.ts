import { RedisStreamsError } from './redis-streams.error.js';

/**
 * A topic's partition layout could not be used: it kept changing while a message was routed or while it was scaled
 * (`STALE_PARTITION_LAYOUT`: nothing was written or changed; try again), or the layout stored in Redis is not one
 * this library wrote (`INVALID_PARTITION_LAYOUT`).
 */
export class PartitionLayoutError extends RedisStreamsError {
  constructor(
    code: 'STALE_PARTITION_LAYOUT' | 'INVALID_PARTITION_LAYOUT',
    readonly pattern: string,
    message: string,
  ) {
    super(code, message);
  }
}

/** `scalePartitions` was asked for a count or on a topic it cannot change. Nothing was changed. */
export class PartitionScaleError extends RedisStreamsError {
  constructor(
    readonly pattern: string,
    readonly partitionCount: number,
    reason: string,
  ) {
    super('PARTITION_SCALE_REFUSED', `The partition count of "${pattern.slice(0, 200)}" was not changed to ${partitionCount}: ${reason}`);
  }
}
