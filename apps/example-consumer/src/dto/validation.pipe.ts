import { ValidationPipe, type ValidationError } from '@nestjs/common';
import { RpcException } from '@nestjs/microservices';

const describe = (errors: ValidationError[], parent = ''): string[] =>
  errors.flatMap((error) => {
    const path = parent ? `${parent}.${error.property}` : error.property;
    return [...Object.values(error.constraints ?? {}).map((text) => `${path}: ${text}`), ...describe(error.children ?? [], path)];
  });

/**
 * ValidationPipe for message payloads. It is bound to `@Payload()` only: bound to the whole handler it would also
 * try to validate the `@Ctx()` argument. A failure becomes an RpcException, so a requester receives
 * `{ status: 'invalid-payload', message }` instead of an HTTP 400; an invalid event fails its handler, and the
 * transport retries it and then parks it in the dead-letter stream.
 */
export function payloadValidationPipe(): ValidationPipe {
  return new ValidationPipe({
    transform: true,
    whitelist: true,
    forbidNonWhitelisted: true,
    exceptionFactory: (errors) =>
      new RpcException({ status: 'invalid-payload', message: `Invalid payload: ${describe(errors).join('; ')}` }),
  });
}
