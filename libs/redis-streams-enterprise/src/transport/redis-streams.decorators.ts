import { EventPattern, MessagePattern } from '@nestjs/microservices';
import { REDIS_STREAMS_TRANSPORT } from '../redis-streams.constants.js';

type Pattern = string | Record<string, string | number>;

/**
 * `@EventPattern` bound to this transport only (other transports of a hybrid app ignore it), typed so that
 * `@Ctx() ctx: RedisStreamsContext` type-checks (Nest 12's typed `@EventPattern('literal')` overload rejects a
 * typed context parameter; `@EventPattern<string>('literal')` is the other way around that).
 */
export function StreamEvent(pattern: Pattern, extras?: Record<string, unknown>): MethodDecorator {
  return EventPattern<Pattern>(pattern, REDIS_STREAMS_TRANSPORT, extras ?? {});
}

/** `@MessagePattern` bound to this transport only. */
export function StreamMessage(pattern: Pattern, extras?: Record<string, unknown>): MethodDecorator {
  return MessagePattern<Pattern>(pattern, REDIS_STREAMS_TRANSPORT, extras ?? {});
}
