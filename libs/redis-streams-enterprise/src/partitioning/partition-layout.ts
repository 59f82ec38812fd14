import { PartitionLayoutError } from '../errors/partition-layout.error.js';

/**
 * The partition layout of a topic: how many partitions it had in each layout epoch. Epoch 0 is the count the topic
 * was created with; every change of the count (`scalePartitions`, auto-scaling) adds an epoch. The layout lives in
 * Redis (`StreamKeys.layout`) so every producer and consumer routes alike, whatever its own configuration says.
 */
export interface PartitionLayout {
  readonly epoch: number;
  /** counts[e] = partition count of epoch e. */
  readonly counts: readonly number[];
}

export function partitionCountOf(layout: PartitionLayout): number {
  return layout.counts[layout.epoch];
}

/** Every partition that may still hold entries: the largest count any epoch had. */
export function readablePartitions(layout: PartitionLayout): number {
  return Math.max(...layout.counts);
}

export function parseLayout(text: string | null, pattern = ''): PartitionLayout | undefined {
  if (!text) return undefined;
  const value = JSON.parse(text) as { epoch?: unknown; counts?: unknown };
  if (
    typeof value.epoch !== 'number' ||
    !Array.isArray(value.counts) ||
    value.counts.length !== value.epoch + 1 ||
    !value.counts.every((n) => Number.isInteger(n) && n >= 1)
  ) {
    throw new PartitionLayoutError('INVALID_PARTITION_LAYOUT', pattern, `The partition layout stored for "${pattern.slice(0, 200)}" is not valid: ${text.slice(0, 200)}`);
  }
  return { epoch: value.epoch, counts: value.counts as number[] };
}

export function serializeLayout(layout: PartitionLayout): string {
  return JSON.stringify({ epoch: layout.epoch, counts: layout.counts });
}

/**
 * The parent-first rule of a layout change (as Kinesis resharding): the partitions whose entries written before
 * epoch `epoch` must all be processed before partition `partition` handles entries written in `epoch`.
 *
 * Keys are placed by jump consistent hashing, so when the count grows, keys only move into the new partitions (from
 * any old one), and when it shrinks, keys only move out of the removed partitions (into any remaining one). A
 * partition that only keeps its own keys needs nothing: its own stream already orders old before new.
 */
export function parentsOf(layout: PartitionLayout, partition: number, epoch: number): number[] {
  if (epoch <= 0 || epoch > layout.epoch) return [];
  const before = layout.counts[epoch - 1];
  const after = layout.counts[epoch];
  if (after > before) return partition < before ? [] : range(0, before);
  if (after < before) return partition < after ? range(after, before) : [];
  return [];
}

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from }, (_, i) => from + i);
}
