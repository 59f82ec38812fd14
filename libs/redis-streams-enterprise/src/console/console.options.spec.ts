import { BadRequestException, type ExecutionContext } from '@nestjs/common';
import { InvalidOptionsError } from '../errors/invalid-options.error.js';
import { clip, entryIdsParam, limitParam, patternParam, timeParam } from './console-input.js';
import { isConsoleWrite, REDIS_STREAMS_CONSOLE_WRITE, resolveConsoleOptions } from './console.options.js';
import { consolePage, escapeHtml } from './page/console-page.html.js';

describe('console options', () => {
  it('defaults to /rse-console, read-only, no guard; a trailing slash is dropped', () => {
    expect(resolveConsoleOptions({})).toEqual({ path: '/rse-console', writes: false, hasGuard: false });
    expect(resolveConsoleOptions({ path: '/ops/streams/', writes: true, guard: { canActivate: () => true } })).toEqual({ path: '/ops/streams', writes: true, hasGuard: true });
  });

  it('refuses a path that is not /-separated safe segments, a guard without canActivate and a non-boolean writes, all at once', () => {
    for (const path of ['', '/', 'rse', '/a b', '/a/../b', '/<x>', '/a?b', '/a#b']) {
      expect(() => resolveConsoleOptions({ path })).toThrow(InvalidOptionsError);
    }
    const error = (() => {
      try {
        resolveConsoleOptions({ path: '/x"y', guard: {} as never, writes: 'yes' as never });
      } catch (e) {
        return e as InvalidOptionsError;
      }
      throw new Error('no error');
    })();
    expect(error.violations.map((v) => v.path)).toEqual(['console.path', 'console.writes', 'console.guard']);
  });

  it('takes an actor function and refuses anything else', () => {
    const actor = () => 'console:alice';
    expect(resolveConsoleOptions({ actor }).actor).toBe(actor);
    expect(() => resolveConsoleOptions({ actor: 'alice' as never })).toThrow(/console.actor must be a function/);
  });

  it('isConsoleWrite reads the metadata the console sets on its write handlers', () => {
    const write = () => undefined;
    Reflect.defineMetadata(REDIS_STREAMS_CONSOLE_WRITE, true, write);
    const context = (handler: () => void) => ({ getHandler: () => handler }) as unknown as ExecutionContext;
    expect(isConsoleWrite(context(write))).toBe(true);
    expect(isConsoleWrite(context(() => undefined))).toBe(false);
  });
});

describe('console page and input', () => {
  it('escapes the base path it writes into the page', () => {
    expect(escapeHtml(`"><script>&'`)).toBe('&quot;&gt;&lt;script&gt;&amp;&#39;');
    const page = consolePage('/x"><script>alert(1)</script>');
    expect(page).not.toContain('<script>alert(1)');
    expect(page).toContain('data-base="/x&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;"');
  });

  it('bounds and checks what requests pass', () => {
    expect(clip('a'.repeat(600))).toHaveLength(500 + '… (100 more characters)'.length);
    expect(entryIdsParam('1-0,2-0,1-0')).toEqual(['1-0', '2-0']);
    expect(() => entryIdsParam(Array.from({ length: 101 }, (_, i) => `${i}-0`))).toThrow(BadRequestException);
    expect(() => entryIdsParam('1-0,$')).toThrow(BadRequestException);
    expect(limitParam(undefined)).toBe(25);
    expect(() => limitParam('101')).toThrow(BadRequestException);
    expect(() => patternParam('x'.repeat(1_025))).toThrow(BadRequestException);
    expect(timeParam('2026-01-01T00:00:00Z', 't')).toBe(Date.UTC(2026, 0, 1));
    expect(() => timeParam('yesterday', 't')).toThrow(BadRequestException);
  });
});

describe('console audit context', () => {
  const options = { path: '/c', writes: true, hasGuard: true };
  it('names the actor the option returns and takes a well-formed x-request-id as the correlation id', async () => {
    const { auditContextOf } = await import('./console-audit.js');
    const request = { headers: { authorization: 'Bearer x', 'x-request-id': 'req-42' } };
    expect(auditContextOf({ ...options, actor: (r) => `console:${String(r.headers.authorization).slice(7)}` }, request)).toEqual({ actor: 'console:x', correlationId: 'req-42' });
    expect(auditContextOf(options, { headers: {} })).toBeUndefined();
    expect(auditContextOf(options, { headers: { 'x-request-id': 'bad id\n' } })).toBeUndefined();
    const failing = auditContextOf({ ...options, actor: () => { throw new Error('no session'); } }, { headers: {} });
    expect(failing).toEqual({ actor: 'unknown (console actor failed: no session)' });
  });
});
