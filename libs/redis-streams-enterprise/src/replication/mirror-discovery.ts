import type { Cluster, Redis } from 'ioredis';
import picomatch from 'picomatch';
import { isCluster } from '../connection/redis-connection.factory.js';
import type { StreamKeys } from '../connection/stream-keys.js';
import { parseLayout, serializeLayout, type PartitionLayout } from '../partitioning/partition-layout.js';

/** A source stream a mirror copies: a topic's stream or one of its partitions, and where its copies go. */
export interface MirroredStreamKeys {
  /** Hash tag of the topic (its pattern, or a hash of it; see StreamKeys.tagOf). */
  readonly tag: string;
  readonly partition?: number;
  readonly source: string;
  readonly target: string;
}

const GLOB_CHARACTERS = /[*?[\]]/;
const SCAN_COUNT = 1_000;

/**
 * Finds the source streams of a mirror's topics. Globs are matched against the tag of each topic stream the source
 * holds (the pattern itself for readable patterns); a topic without glob characters is matched exactly, also when
 * its key is hashed. The source is scanned (every master of a Cluster) for keys of type stream under its prefix.
 */
export class MirrorDiscovery {
  private readonly exactTags: Set<string>;
  private readonly globs: ((tag: string) => boolean)[];

  constructor(
    topics: readonly string[],
    private readonly sourceKeys: StreamKeys,
    private readonly targetKeys: StreamKeys,
  ) {
    this.exactTags = new Set(topics.filter((t) => !GLOB_CHARACTERS.test(t)).map((t) => sourceKeys.tagOf(t)));
    this.globs = topics.filter((t) => GLOB_CHARACTERS.test(t)).map((t) => picomatch(t, { dot: true }));
  }

  /** True when a topic's tag is one of the mirror's topics. */
  matches(tag: string): boolean {
    return this.exactTags.has(tag) || this.globs.some((match) => match(tag));
  }

  /** Every source stream of a matching topic, sorted (topic stream before its partitions). */
  async scan(source: Redis | Cluster): Promise<MirroredStreamKeys[]> {
    const found = new Map<string, MirroredStreamKeys>();
    const nodes: (Redis | Cluster)[] = isCluster(source) ? source.nodes('master') : [source];
    for (const node of nodes) {
      let cursor = '0';
      do {
        const [next, keys] = await node.scan(cursor, 'MATCH', this.sourceKeys.topicStreamGlob(), 'COUNT', SCAN_COUNT, 'TYPE', 'stream');
        cursor = next;
        for (const key of keys) {
          const parsed = this.sourceKeys.topicStreamOf(key);
          if (!parsed || !this.matches(parsed.tag)) continue;
          found.set(key, { ...parsed, source: key, target: this.targetKeys.streamOfTag(parsed.tag, parsed.partition) });
        }
      } while (cursor !== '0');
    }
    return [...found.values()].sort((a, b) => a.tag.localeCompare(b.tag) || (a.partition ?? -1) - (b.partition ?? -1));
  }

  /**
   * Why a topic cannot be mirrored, or undefined when it can. Partitions are copied one to one (a key's partition, and
   * with it its order, must be the same on both sides), so both regions must have the same partition layout. A topic
   * partitioned in the source but not yet here gets the source's layout (SET NX: a producer or consumer of this
   * region that creates it at the same moment wins, and is compared).
   */
  async layoutProblem(source: Redis | Cluster, target: Redis | Cluster, tag: string): Promise<string | undefined> {
    let sourceLayout: PartitionLayout | undefined;
    let targetLayout: PartitionLayout | undefined;
    try {
      sourceLayout = parseLayout(await source.get(this.sourceKeys.layoutOfTag(tag)), tag);
    } catch {
      return 'the partition layout stored in the source region is not valid'; // hostile or foreign data: refuse, never guess
    }
    const targetKey = this.targetKeys.layoutOfTag(tag);
    try {
      targetLayout = parseLayout(await target.get(targetKey), tag);
      if (sourceLayout && !targetLayout) {
        if ((await target.set(targetKey, serializeLayout(sourceLayout), 'NX')) === 'OK') return undefined;
        targetLayout = parseLayout(await target.get(targetKey), tag);
      }
    } catch (error) {
      if (error instanceof Error && 'code' in error && error.code === 'INVALID_PARTITION_LAYOUT') return 'the partition layout stored in this region is not valid';
      throw error;
    }
    const describe = (layout: PartitionLayout | undefined) => (layout ? `partition counts ${JSON.stringify(layout.counts)}` : 'not partitioned');
    if (JSON.stringify(sourceLayout?.counts) === JSON.stringify(targetLayout?.counts)) return undefined;
    return `source region: ${describe(sourceLayout)}, this region: ${describe(targetLayout)}`;
  }
}
