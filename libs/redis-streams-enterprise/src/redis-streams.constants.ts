/** Transport id of this library: `@EventPattern('x', REDIS_STREAMS_TRANSPORT)` binds a handler to this transport only. */
export const REDIS_STREAMS_TRANSPORT = Symbol('REDIS_STREAMS_TRANSPORT');

/** DI token of the validated, frozen configuration (`ResolvedRedisStreamsConfig`). */
export const REDIS_STREAMS_OPTIONS = Symbol('REDIS_STREAMS_OPTIONS');

/** Connection states reported by `status` and `getStatus()`. */
export enum RedisStreamsStatus {
  Connecting = 'connecting',
  Connected = 'connected',
  Reconnecting = 'reconnecting',
  Disconnected = 'disconnected',
  Closed = 'closed',
}
