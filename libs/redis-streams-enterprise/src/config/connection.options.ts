import { Type } from 'class-transformer';
import {
  ArrayMinSize,
  IsArray,
  IsBoolean,
  IsInt,
  IsNotEmpty,
  IsObject,
  IsOptional,
  IsString,
  Matches,
  Max,
  Min,
  ValidateNested,
} from 'class-validator';
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

/**
 * TLS to Redis (`tls-port`), also mutual TLS (`tls-auth-clients yes`). Each PEM is given inline (`ca`, `cert`, `key`)
 * or as a file (`caFile`, `certFile`, `keyFile`), not both; files are read and checked at start (a file that cannot be
 * read, holds no PEM, or a key that does not match its certificate fails validation, naming the file), never on a
 * reconnect. The server's certificate is always verified (chain and host name) unless `rejectUnauthorized` is false.
 * A `rediss://` URL without `tls` means TLS with Node's built-in CAs; `tls` needs a `rediss://` URL (or `cluster`).
 * There is no fallback to plain text.
 */
export class ConnectionTlsOptions {
  /**
   * PEM CA certificate(s) the server's certificate must chain to. Replaces Node's built-in list of public CAs.
   * @default undefined (Node's built-in CAs)
   */
  @IsOptional()
  @IsString()
  @IsNotEmpty()
  ca?: string;

  /** File with the PEM CA certificate(s), instead of `ca`. @default undefined */
  @IsOptional()
  @IsString()
  @IsNotEmpty()
  caFile?: string;

  /** PEM client certificate (chain) for mutual TLS; needs `key` or `keyFile`. @default undefined */
  @IsOptional()
  @IsString()
  @IsNotEmpty()
  cert?: string;

  /** File with the PEM client certificate, instead of `cert`. @default undefined */
  @IsOptional()
  @IsString()
  @IsNotEmpty()
  certFile?: string;

  /** PEM private key of the client certificate. Never quoted in errors or logs. @default undefined */
  @IsOptional()
  @IsString()
  @IsNotEmpty()
  key?: string;

  /** File with the PEM private key of the client certificate, instead of `key`. @default undefined */
  @IsOptional()
  @IsString()
  @IsNotEmpty()
  keyFile?: string;

  /** Passphrase of an encrypted private key. Never quoted in errors or logs. @default undefined */
  @IsOptional()
  @IsString()
  passphrase?: string;

  /**
   * Host name sent as SNI and checked against the server's certificate, instead of the host being connected to. Needed
   * when connecting by IP address to a server whose certificate names a host, and on a Cluster (whose nodes are
   * reached by the IP addresses `CLUSTER SLOTS` lists) whose node certificates do not list those addresses.
   * @default undefined (the host of `url`, or the node's address)
   */
  @IsOptional()
  @IsString()
  @IsNotEmpty()
  servername?: string;

  /**
   * Verify the server's certificate chain and host name. `false` accepts any certificate, so anyone on the path can
   * read and change the traffic: for local experiments only.
   * @default true
   */
  @IsOptional()
  @IsBoolean()
  rejectUnauthorized?: boolean = true;
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
   * TLS with explicit certificates (see `ConnectionTlsOptions`): for the server of `url` (which must be `rediss://`),
   * or for every node of `cluster`. Do not also set `tls` in `options` or `cluster.options.redisOptions`.
   * @default undefined (TLS with Node's built-in CAs for a `rediss://` URL, plain text for `redis://`)
   */
  @IsOptional()
  @ValidateNested()
  @Type(() => ConnectionTlsOptions)
  tls?: ConnectionTlsOptions;

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
