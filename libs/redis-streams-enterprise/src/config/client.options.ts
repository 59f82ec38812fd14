import { IsInt, Max, Min } from 'class-validator';

/** Producer-side settings of `RedisStreamsClient`. */
export class ClientOptions {
  /**
   * How long `send()` waits for a reply before failing with `RequestTimeoutError`.
   * @default 30000
   */
  @IsInt()
  @Min(1)
  @Max(3_600_000)
  requestTimeoutMs = 30_000;

  /**
   * Requests waiting for replies at once; more are refused with `TooManyPendingRequestsError`.
   * @default 10000
   */
  @IsInt()
  @Min(1)
  @Max(1_000_000)
  maxPendingRequests = 10_000;

  /**
   * While Redis is unreachable, up to this many `emit`/`send` calls wait for the reconnect (each at most
   * `offlineTimeoutMs`); more fail at once with `RedisUnavailableError`. `0`: every call fails at once while
   * Redis is unreachable (nothing is ever held in memory unbounded, nothing is dropped silently).
   * @default 0
   */
  @IsInt()
  @Min(0)
  @Max(1_000_000)
  offlineQueueSize = 0;

  /**
   * Longest wait of a queued call for Redis to come back.
   * @default 10000
   */
  @IsInt()
  @Min(1)
  @Max(3_600_000)
  offlineTimeoutMs = 10_000;

  /**
   * Approximate cap on entries in this client's reply stream.
   * @default 10000
   */
  @IsInt()
  @Min(100)
  replyStreamMaxLen = 10_000;

  /**
   * Time to live of a reply stream after its last reply, so the streams of clients that died do not pile up.
   * @default 300000
   */
  @IsInt()
  @Min(1_000)
  replyStreamTtlMs = 300_000;
}
