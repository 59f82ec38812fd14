import { applyDecorators, Header, SetMetadata } from '@nestjs/common';
import { REDIS_STREAMS_CONSOLE_WRITE } from './console.options.js';

/**
 * The page's Content-Security-Policy: scripts, styles and requests only from the console's own origin, no inline
 * script or style, no plugins, no framing, no <base> tricks. Everything shown comes from Redis and is inserted as text;
 * this is the second line of defence should that ever fail.
 */
export const CONSOLE_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/** Headers of every console response: no sniffing, no caching, no referrer, no framing. */
export const SecureHeaders = () =>
  applyDecorators(
    Header('X-Content-Type-Options', 'nosniff'),
    Header('Cache-Control', 'no-store'),
    Header('Referrer-Policy', 'no-referrer'),
    Header('X-Frame-Options', 'DENY'),
  );

/** Marks a route as a write (see REDIS_STREAMS_CONSOLE_WRITE and ConsoleRequestGuard). */
export const ConsoleWrite = () => SetMetadata(REDIS_STREAMS_CONSOLE_WRITE, true);
