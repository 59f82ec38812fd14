import { IsIn, IsInt, IsOptional, IsString, Matches, Max, Min } from 'class-validator';

/** Naming, trimming and size limits of the streams the transport writes. */
export class StreamsOptions {
  /**
   * Prefix of every Redis key this library creates (`<prefix>:{<pattern>}`). Use one per environment or tenant.
   * @default 'rse'
   */
  @IsString()
  @Matches(/^[A-Za-z0-9._:-]{1,64}$/, { message: 'must be 1-64 characters of A-Z a-z 0-9 . _ : -' })
  keyPrefix = 'rse';

  /**
   * Cap on entries per stream. With `trimming: 'safe'` (the default) it is a target: entries some consumer group still
   * needs are kept, so the stream grows past it while a group lags (see `trimming`). With `trimming: 'hard'` it is an
   * approximate hard cap (`XADD ... MAXLEN ~ n`) that deletes entries whether or not every group processed them.
   * @default undefined (no length trimming)
   */
  @IsOptional()
  @IsInt()
  @Min(100)
  maxLen?: number;

  /**
   * Drop entries older than this (by the Redis server's clock), under the same `trimming` rule as `maxLen`: in `'safe'`
   * mode only entries no group still needs; in `'hard'` mode `XADD ... MINID ~ <now - retentionMs>` (and a periodic
   * trim when `maxLen` is set too).
   * @default undefined (no time trimming)
   */
  @IsOptional()
  @IsInt()
  @Min(1_000)
  retentionMs?: number;

  /**
   * How `maxLen`/`retentionMs` treat entries a consumer group has not processed yet.
   * `'safe'`: never trim past the oldest entry some group of the stream still needs (its oldest pending entry, or the
   * first entry it has not been delivered yet); the stream grows past the limits while a group lags, which costs
   * memory and is reported (`getStatus()` `retention.behindLimit`, a warning in the log). Producers trim every few
   * writes with a script instead of inside `XADD`; consumers trim every few seconds. A stream with no group at all is
   * trimmed by the limits alone.
   * `'hard'`: the limits are hard (approximate) caps applied inside every `XADD`; entries a lagging group has not read
   * are deleted, counted per group (`getStatus()`, `getMetrics().lostUnreadToTrimming`) and warned about beforehand.
   * @default 'safe'
   */
  @IsIn(['safe', 'hard'])
  trimming: 'safe' | 'hard' = 'safe';

  /**
   * Largest encoded payload (bytes of its JSON) accepted by `emit`/`send` (refused with `PayloadTooLargeError`) and
   * by consumers (larger entries are dead-lettered unparsed). The ceiling, 512 MiB, is Redis' default
   * `proto-max-bulk-len` (the largest single argument Redis accepts) and about V8's longest string.
   * @default 1048576 (1 MiB)
   */
  @IsInt()
  @Min(1)
  @Max(512 * 1024 * 1024)
  maxPayloadBytes = 1_048_576;

  /**
   * Claim-check: a payload whose JSON is larger than this many bytes is stored once in its own key beside the
   * stream (`<stream>:blob:<id>`) and the entry carries only a reference (`blob`, `size`); consumers fetch it with
   * one GET. It only applies to payloads up to `maxPayloadBytes`, so raise that to send large messages. `0` keeps
   * every payload inline in its entry.
   * @default 1048576 (1 MiB)
   */
  @IsInt()
  @Min(0)
  @Max(512 * 1024 * 1024)
  claimCheckThresholdBytes = 1_048_576;

  /**
   * The doorbell: producers name the streams they wrote to on `<prefix>:{#doorbell}`, and servers read only the
   * streams named (plus a full sweep every `consumer.sweepMs`) instead of one blocking read over all of them.
   * `'cluster'`: on a Redis Cluster only, where one blocking read cannot span hash slots. `'always'`: also on a single
   * server, for servers that read hundreds or thousands of streams (partitions, topics), where one read naming every
   * stream costs Redis time proportional to their number. Producers and consumers must use the same setting (a
   * consumer with the doorbell and a producer without it still works, with delays up to `consumer.sweepMs`).
   * @default 'cluster'
   */
  @IsIn(['cluster', 'always'])
  doorbell: 'cluster' | 'always' = 'cluster';
}
