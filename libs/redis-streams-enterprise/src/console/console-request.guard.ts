import { ForbiddenException, Inject, Injectable, type CanActivate, type ExecutionContext } from '@nestjs/common';
import { CONSOLE_WRITE_HEADER, isConsoleWrite, REDIS_STREAMS_CONSOLE_OPTIONS, type ResolvedConsoleOptions } from './console.options.js';

/** The little of a request (Express or Fastify) the guard reads. */
interface RequestLike {
  readonly headers: Record<string, string | string[] | undefined>;
}

const header = (request: RequestLike, name: string): string | undefined => {
  const value = request.headers[name];
  return Array.isArray(value) ? value[0] : value;
};

/**
 * Runs before the user's guard on every console route. Reads pass. A write (redrive, delete, replay) is refused with
 * 403 unless the console was registered with `writes: true` and the request cannot be a cross-site forgery: it carries
 * the `x-rse-console` header (a form cannot set a custom header, and a cross-origin script needs a CORS preflight the
 * console never grants), the browser does not call it cross-site (`Sec-Fetch-Site`), and its `Origin`, when sent,
 * is the console's own host.
 */
@Injectable()
export class ConsoleRequestGuard implements CanActivate {
  constructor(@Inject(REDIS_STREAMS_CONSOLE_OPTIONS) private readonly options: ResolvedConsoleOptions) {}

  canActivate(context: ExecutionContext): boolean {
    if (!isConsoleWrite(context)) return true;
    if (!this.options.writes) {
      throw new ForbiddenException('The console is read-only: register RedisStreamsConsoleModule with writes: true to redrive, delete or replay');
    }
    const request = context.switchToHttp().getRequest<RequestLike>();
    if (header(request, CONSOLE_WRITE_HEADER) !== '1') throw new ForbiddenException(`A console write needs the header ${CONSOLE_WRITE_HEADER}: 1`);
    const site = header(request, 'sec-fetch-site');
    if (site !== undefined && site !== 'same-origin' && site !== 'none') throw new ForbiddenException('Cross-site console writes are refused');
    const origin = header(request, 'origin');
    if (origin !== undefined && origin !== 'null' && hostOf(origin) !== header(request, 'host')) throw new ForbiddenException('Console writes from another origin are refused');
    if (origin === 'null') throw new ForbiddenException('Console writes from an opaque origin are refused');
    return true;
  }
}

function hostOf(origin: string): string | undefined {
  try {
    return new URL(origin).host;
  } catch {
    return undefined; // not a URL: compared as no host, refused
  }
}
