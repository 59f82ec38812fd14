import type { CanActivate, ExecutionContext, ModuleMetadata, Type } from '@nestjs/common';
import { InvalidOptionsError, type ConfigViolation } from '../errors/invalid-options.error.js';

/**
 * Metadata key the console sets (to `true`) on the handlers of its write routes: redrive, delete, start a replay.
 * A guard can tell reads from writes with it (or with {@link isConsoleWrite}), or simply by the request method: every
 * write is a POST or DELETE, every read a GET.
 */
export const REDIS_STREAMS_CONSOLE_WRITE = 'redis-streams:console-write';

/**
 * Token of an optional mirror whose status the console's mirror panel shows (`getStatus()` of the shape of
 * {@link ConsoleMirrorSource}): `{ provide: REDIS_STREAMS_CONSOLE_MIRROR, useExisting: StreamMirror }`.
 */
export const REDIS_STREAMS_CONSOLE_MIRROR = Symbol('REDIS_STREAMS_CONSOLE_MIRROR');

/** The request header every write must carry (a cross-site form cannot set it; a cross-site fetch needs CORS). */
export const CONSOLE_WRITE_HEADER = 'x-rse-console';

/** What the mirror panel reads. */
export interface ConsoleMirrorSource {
  getStatus(): ConsoleMirrorStatus | Promise<ConsoleMirrorStatus>;
}

export interface ConsoleMirrorStatus {
  readonly running: boolean;
  /** This deployment's region, if the mirror has one. */
  readonly region?: string | null;
  readonly topics: readonly {
    /** Name of the mirror copying it, if several. */
    readonly mirror?: string;
    readonly source: string;
    readonly target: string;
    /** Entries of the source not yet copied to the target (null: unknown). */
    readonly lag: number | null;
    readonly copied: number;
    readonly lastSourceId: string | null;
  }[];
  /** Each mirror's state, if the source reports it. */
  readonly mirrors?: readonly { readonly name: string; readonly running: boolean; readonly failing?: boolean; readonly lastError?: string }[];
}

/** Options of `RedisStreamsConsoleModule.register`. */
export interface RedisStreamsConsoleOptions {
  /**
   * Where the console is mounted in the HTTP app (below a global prefix, if the app sets one). Letters, digits and
   * `._~-` in `/`-separated segments. @default '/rse-console'
   */
  readonly path?: string;
  /**
   * Guard that every console route passes through (page, assets, API): a class (instantiated by Nest in the console's
   * module, so its dependencies must be visible there: `imports` or global modules) or an instance. Without one, anyone
   * who reaches the HTTP app can read the console (a warning is logged at start-up).
   */
  readonly guard?: Type<CanActivate> | CanActivate;
  /**
   * Allow writes (redrive, delete dead letters, start replays); each write also needs the guard's approval. @default
   * false: read-only, every write route answers 403.
   */
  readonly writes?: boolean;
  /** Modules the console needs: the guard's dependencies, and the `RedisStreamsEnterpriseModule` when it is not global. */
  readonly imports?: ModuleMetadata['imports'];
  /**
   * Who performs a write, as recorded in the audit trail (`compliance.audit`): called with the request of each redrive,
   * delete or replay, e.g. `(req) => 'console:' + req.headers['x-user']`. Unset (or undefined returned): `compliance.actor`.
   */
  readonly actor?: (request: ConsoleRequest) => string | undefined;
}

/** A console request as the `actor` option sees it (Express or Fastify; `user` is whatever your auth put there). */
export interface ConsoleRequest {
  readonly headers: Record<string, string | string[] | undefined>;
  readonly user?: unknown;
  readonly [key: string]: unknown;
}

/** Validated options. */
export interface ResolvedConsoleOptions {
  readonly path: string;
  readonly writes: boolean;
  readonly hasGuard: boolean;
  readonly actor?: (request: ConsoleRequest) => string | undefined;
}

const SEGMENTS = /^(\/[A-Za-z0-9._~-]+)+$/;

/**
 * Checks and completes the options.
 * @throws InvalidOptionsError naming every bad option.
 */
export function resolveConsoleOptions(options: RedisStreamsConsoleOptions): ResolvedConsoleOptions {
  const violations: ConfigViolation[] = [];
  const path = (options.path ?? '/rse-console').replace(/\/+$/, '');
  if (!SEGMENTS.test(path) || path.split('/').some((s) => s === '.' || s === '..')) {
    violations.push({ path: 'console.path', rule: 'pathSegments', message: `console.path must be / followed by segments of letters, digits and ._~- (got ${JSON.stringify(options.path)})` });
  }
  if (options.writes !== undefined && typeof options.writes !== 'boolean') {
    violations.push({ path: 'console.writes', rule: 'isBoolean', message: 'console.writes must be a boolean' });
  }
  const guard = options.guard;
  if (guard !== undefined && typeof guard !== 'function' && typeof (guard as Partial<CanActivate>).canActivate !== 'function') {
    violations.push({ path: 'console.guard', rule: 'isGuard', message: 'console.guard must be a guard class or an object with canActivate()' });
  }
  if (options.actor !== undefined && typeof options.actor !== 'function') {
    violations.push({ path: 'console.actor', rule: 'isFunction', message: 'console.actor must be a function of the request' });
  }
  if (violations.length > 0) throw new InvalidOptionsError(violations);
  return { path, writes: options.writes ?? false, hasGuard: guard !== undefined, ...(options.actor ? { actor: options.actor } : {}) };
}

/** True when the route being guarded is one of the console's writes (redrive, delete, replay). */
export function isConsoleWrite(context: ExecutionContext): boolean {
  return Reflect.getMetadata(REDIS_STREAMS_CONSOLE_WRITE, context.getHandler()) === true;
}

/** DI token of the validated console options (internal). */
export const REDIS_STREAMS_CONSOLE_OPTIONS = Symbol('REDIS_STREAMS_CONSOLE_OPTIONS');
