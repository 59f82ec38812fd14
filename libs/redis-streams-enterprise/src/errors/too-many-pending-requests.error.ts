import { RedisStreamsError } from './redis-streams.error.js';

/** `send()` was refused because `client.maxPendingRequests` requests are already waiting for replies. */
export class TooManyPendingRequestsError extends RedisStreamsError {
  constructor(readonly limit: number) {
    super(
      'TOO_MANY_PENDING_REQUESTS',
      `${limit} requests are already waiting for a reply (client.maxPendingRequests); retry later or raise the limit`,
    );
  }
}
