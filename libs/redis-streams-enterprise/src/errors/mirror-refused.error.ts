import { RedisStreamsError } from './redis-streams.error.js';

/**
 * A `StreamMirror` refused to copy a topic: its partition layout differs between the source region and this one (a
 * key would be in another partition, so per-key order could not be kept), or the layout stored in the source is not
 * valid. Nothing of that topic was copied; the other topics are unaffected.
 */
export class MirrorRefusedError extends RedisStreamsError {
  constructor(
    readonly mirror: string,
    readonly refused: readonly { readonly topic: string; readonly reason: string }[],
  ) {
    super(
      'MIRROR_REFUSED',
      `Mirror "${mirror}" refused ${refused.length === 1 ? 'a topic' : `${refused.length} topics`}: ` +
        `${refused.slice(0, 10).map((r) => `"${r.topic}" (${r.reason})`).join('; ')}; give the topic the same partition layout in both regions (PartitioningManager.scalePartitions) or leave it out of topics`,
    );
  }
}
