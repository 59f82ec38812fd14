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
