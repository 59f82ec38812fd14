import { Catch, type ArgumentsHost, type RpcExceptionFilter } from '@nestjs/common';
import { BaseRpcExceptionFilter } from '@nestjs/microservices';
import { throwError, type Observable } from 'rxjs';
import { RedisStreamsContext } from './redis-streams.context.js';

/**
 * Lets the transport see the error a handler really threw.
 *
 * Nest's default RPC exception filter replaces any error that is not an `RpcException` with
 * `{ status: 'error', message: 'Internal server error' }` before the transport sees it, so dead letters and logs
 * would only say "Internal server error". With this filter, errors of Redis Streams handlers reach the transport
 * unchanged: the dead-letter record keeps their name and message, and callers of `send()` still get
 * "Internal server error" for errors that are not `RpcException`s (the transport sanitizes replies itself).
 * Other transports and contexts get Nest's default behaviour.
 *
 * ```ts
 * const app = await NestFactory.createMicroservice(AppModule, { strategy });
 * app.useGlobalFilters(new RedisStreamsExceptionFilter());
 * ```
 */
@Catch()
export class RedisStreamsExceptionFilter implements RpcExceptionFilter<unknown> {
  private readonly fallback = new BaseRpcExceptionFilter();

  catch(exception: unknown, host: ArgumentsHost): Observable<unknown> {
    if (host.getType() === 'rpc' && host.switchToRpc().getContext() instanceof RedisStreamsContext) {
      return throwError(() => exception);
    }
    return this.fallback.catch(exception, host);
  }
}
