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
   * Approximate cap on entries per stream (`XADD ... MAXLEN ~ n`). Trimming deletes the oldest entries
   * whether or not every consumer group has processed them: size it well above the worst lag.
   * @default undefined (no length trimming)
   */
  @IsOptional()
  @IsInt()
  @Min(100)
  maxLen?: number;

  /**
   * Drop entries older than this (`XADD ... MINID ~ <now - retentionMs>`), with the same caveat as `maxLen`.
   * When both are set, the entry written uses `maxLen` and a periodic `XTRIM MINID` applies the retention.
   * @default undefined (no time trimming)
   */
  @IsOptional()
  @IsInt()
  @Min(1_000)
  retentionMs?: number;

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
