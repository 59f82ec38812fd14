import { Type } from 'class-transformer';
import { ArrayMinSize, IsArray, IsInt, IsNotEmpty, IsObject, IsOptional, IsString, Matches, Max, Min, ValidateNested } from 'class-validator';
import type { ClusterOptions, RedisOptions } from 'ioredis';

/** One seed node of a Redis Cluster. */
export class ClusterNodeOptions {
  @IsString()
  @IsNotEmpty()
  host!: string;

  @IsInt()
  @Min(1)
  @Max(65_535)
  port!: number;
}

/** Redis Cluster: seed nodes (any reachable subset; the rest is discovered) and ioredis `ClusterOptions`. */
export class ClusterConnectionOptions {
  @IsArray()
  @ArrayMinSize(1, { message: 'must list at least one node' })
  @ValidateNested({ each: true })
  @Type(() => ClusterNodeOptions)
  nodes!: ClusterNodeOptions[];

  /**
   * ioredis `ClusterOptions` (natMap, dnsLookup, redisOptions such as password or tls, ...). The transport always
   * sets its own `lazyConnect` and `enableOfflineQueue`, and per-node `maxRetriesPerRequest` per connection role.
   * @default undefined
   */
  @IsOptional()
  @IsObject()
  options?: ClusterOptions;
}

/** How to reach Redis. */
export class ConnectionOptions {
  /**
   * `redis://[user:password@]host:port[/db]` or `rediss://` for TLS.
   * @default 'redis://127.0.0.1:6379'
   */
  @IsString()
  @Matches(/^rediss?:\/\/\S+$/, { message: 'must be a redis:// or rediss:// URL' })
  url = 'redis://127.0.0.1:6379';

  /**
   * ioredis options applied over the URL (password, tls, family, retryStrategy, ...).
   * The transport always sets its own `lazyConnect`, `enableOfflineQueue` and `maxRetriesPerRequest` per connection role.
   * @default undefined
   */
  @IsOptional()
  @IsObject()
  options?: RedisOptions;

  /**
   * Connect to a Redis Cluster instead of the single server of `url` (which is then ignored). Every key of one
   * pattern shares one hash slot, so every script stays single-slot; the server reads each slot's streams on its own
   * blocking connection.
   * @default undefined
   */
  @IsOptional()
  @ValidateNested()
  @Type(() => ClusterConnectionOptions)
  cluster?: ClusterConnectionOptions;

  /**
   * Dead-connection detection. A blocking read that outlives its BLOCK by this long, or a command that gets no reply
   * for this long, means the socket is presumed half-open (the peer vanished without closing it): it is dropped and
   * the work is retried on a fresh connection, so a dead link cannot stall consumption or publishing forever.
   * @default 10000
   */
  @IsInt()
  @Min(1_000)
  @Max(600_000)
  blockingWatchdogMs = 10_000;

  /**
   * After each publish, wait until this many replicas confirmed the write (`WAIT`), and fail the publish with
   * `ReplicationTimeoutError` when they do not within `waitTimeoutMs` (the entry is stored on the primary but may be
   * lost by a failover). Narrows, but cannot close, the window of asynchronous replication. `0`: do not wait.
   * @default 0
   */
  @IsInt()
  @Min(0)
  @Max(100)
  waitReplicas = 0;

  /**
   * Longest `WAIT` for `waitReplicas`.
   * @default 1000
   */
  @IsInt()
  @Min(1)
  @Max(60_000)
  waitTimeoutMs = 1_000;

  /**
   * Connection name prefix shown in `CLIENT LIST`.
   * @default 'rse'
   */
  @IsString()
  @Matches(/^[A-Za-z0-9._-]{1,40}$/, { message: 'must be 1-40 characters of A-Z a-z 0-9 . _ -' })
  connectionName = 'rse';
}
