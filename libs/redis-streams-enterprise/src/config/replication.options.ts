import { Type } from 'class-transformer';
import { ArrayMaxSize, ArrayMinSize, IsArray, IsIn, IsInt, IsOptional, IsString, Matches, Max, MaxLength, Min, MinLength, ValidateNested } from 'class-validator';
import type { ConfigViolation } from '../errors/invalid-options.error.js';
import { ConnectionOptions } from './connection.options.js';

/** Region names: short and safe to put in keys, fields and logs. */
export const REGION_NAME = /^[A-Za-z0-9._-]{1,64}$/;
const REGION_MESSAGE = 'must be 1-64 characters of A-Z a-z 0-9 . _ -';

/** The deployment a mirror copies from (another region's Redis, standalone or Cluster). */
export class MirrorSourceOptions {
  /**
   * Name of the source's region. Only entries born there are copied (entries another mirror copied into the source
   * carry another origin and are skipped), which is what keeps active-active mirroring free of loops.
   */
  @IsString()
  @Matches(REGION_NAME, { message: REGION_MESSAGE })
  region!: string;

  /** How to reach the source (same fields as the top-level `connection`: url or cluster, TLS, ...). */
  @ValidateNested()
  @Type(() => ConnectionOptions)
  connection: ConnectionOptions = new ConnectionOptions();

  /**
   * Key prefix of the source's streams.
   * @default undefined (the same as streams.keyPrefix)
   */
  @IsOptional()
  @IsString()
  @Matches(/^[A-Za-z0-9._:-]{1,64}$/, { message: 'must be 1-64 characters of A-Z a-z 0-9 . _ : -' })
  keyPrefix?: string;
}

/** One mirror: a source deployment and the topics copied from it into this deployment. */
export class MirrorOptions {
  /** Name in logs, status and metrics. */
  @IsString()
  @Matches(/^[A-Za-z0-9._-]{1,64}$/, { message: 'must be 1-64 characters of A-Z a-z 0-9 . _ -' })
  name!: string;

  @ValidateNested()
  @Type(() => MirrorSourceOptions)
  source!: MirrorSourceOptions;

  /**
   * Topics to copy: patterns (`orders.created`) or globs over pattern names (`orders.*`, `*`; picomatch syntax).
   * Partitioned topics are copied partition by partition. Globs match patterns whose stream is named by the pattern
   * itself (1-200 characters of `A-Za-z0-9._:/@-`); other patterns are hashed in key names and must be listed exactly.
   */
  @IsArray()
  @ArrayMinSize(1, { message: 'must list at least one topic' })
  @ArrayMaxSize(1_000)
  @IsString({ each: true })
  @MinLength(1, { each: true })
  @MaxLength(1_024, { each: true })
  topics!: string[];

  /** Entries read (and written to this deployment in one script call) per stream and step. @default 100 */
  @IsInt()
  @Min(1)
  @Max(10_000)
  batchSize = 100;

  /**
   * Longest blocking XREAD on a standalone source; on a Cluster source (read without blocking, per stream), the pause
   * after a step that found nothing.
   * @default 1000
   */
  @IsInt()
  @Min(10)
  @Max(60_000)
  blockMs = 1_000;

  /** How often the source is scanned for new streams matching `topics`, and the lag refreshed. @default 5000 */
  @IsInt()
  @Min(100)
  @Max(3_600_000)
  discoveryIntervalMs = 5_000;

  /**
   * Where a stream without a checkpoint in this deployment starts: `beginning` copies what the source still holds,
   * `end` only entries added after the mirror found the stream.
   * @default 'beginning'
   */
  @IsIn(['beginning', 'end'])
  startFrom: 'beginning' | 'end' = 'beginning';

  /** Most source streams (topics and partitions) one mirror copies. @default 1000 */
  @IsInt()
  @Min(1)
  @Max(100_000)
  maxStreams = 1_000;
}

/**
 * Cross-region replication (`StreamMirror`): copies topics of other deployments into this one (the one of
 * `connection`), exactly once per entry and in order per stream. Run a mirror in every region that should see another
 * region's messages; two regions mirroring each other (active-active) do not loop.
 */
export class ReplicationOptions {
  /**
   * Name of this deployment's region: the region every mirror copies into (no mirror may copy from it). Needed when
   * `mirrors` is not empty.
   * @default undefined
   */
  @IsOptional()
  @IsString()
  @Matches(REGION_NAME, { message: REGION_MESSAGE })
  region?: string;

  /** Mirrors into this deployment; `StreamMirror` starts them with the application (or on `start()`). @default [] */
  @IsArray()
  @ArrayMaxSize(100)
  @ValidateNested({ each: true })
  @Type(() => MirrorOptions)
  mirrors: MirrorOptions[] = [];
}

/** Rules across fields of `replication`: a region to mirror into, distinct names, no mirror from the own region. */
export function replicationViolations(replication: ReplicationOptions): ConfigViolation[] {
  const out: ConfigViolation[] = [];
  const add = (path: string, rule: string, message: string) => out.push({ path, rule, message: `${path} ${message}` });
  if (replication.mirrors.length > 0 && replication.region === undefined) {
    add('replication.region', 'neededWithMirrors', 'is needed when replication.mirrors is not empty (the region this deployment is)');
  }
  const names = new Set<string>();
  replication.mirrors.forEach((mirror, i) => {
    if (names.has(mirror.name)) add(`replication.mirrors.${i}.name`, 'unique', `must be unique ("${mirror.name}" is used twice)`);
    names.add(mirror.name);
    if (mirror.source.region === replication.region) {
      add(`replication.mirrors.${i}.source.region`, 'notOwnRegion', 'must not be replication.region (a mirror copies from another region)');
    }
  });
  return out;
}
