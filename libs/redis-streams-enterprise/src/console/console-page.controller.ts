import { Get, Header, Injectable, Req } from '@nestjs/common';
import { CONSOLE_CSP, SecureHeaders } from './console-headers.js';
import { CONSOLE_CSS } from './page/console-page.css.js';
import { consolePage } from './page/console-page.html.js';
import { CONSOLE_SCRIPT_CORE } from './page/console-page.script-core.js';
import { consoleScript } from './page/console-page.script-actions.js';

/** The request's path as Express (originalUrl, with any global prefix) or Fastify (url) gives it. */
interface RequestLike {
  readonly originalUrl?: string;
  readonly url?: string;
}

/**
 * The console's page and its two assets. The page names its assets and the API by its own request path (so a global
 * prefix or a proxy path before the console's path needs no configuration).
 */
@Injectable()
export class ConsolePageController {
  private readonly script = consoleScript(CONSOLE_SCRIPT_CORE);

  @Get()
  @Header('Content-Type', 'text/html; charset=utf-8')
  @Header('Content-Security-Policy', CONSOLE_CSP)
  @SecureHeaders()
  page(@Req() request: RequestLike): string {
    const path = (request.originalUrl ?? request.url ?? '').split('?')[0].replace(/\/+$/, '');
    return consolePage(path);
  }

  @Get('assets/console.js')
  @Header('Content-Type', 'text/javascript; charset=utf-8')
  @SecureHeaders()
  js(): string {
    return this.script;
  }

  @Get('assets/console.css')
  @Header('Content-Type', 'text/css; charset=utf-8')
  @SecureHeaders()
  css(): string {
    return CONSOLE_CSS;
  }
}
