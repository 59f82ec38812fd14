import { Controller, Inject, Logger, Module, UseGuards, type CanActivate, type DynamicModule, type OnModuleInit, type Type } from '@nestjs/common';
import { ConsoleAuditController } from './console-audit.controller.js';
import { ConsoleDeadLettersController } from './console-dead-letters.controller.js';
import { ConsoleInspector } from './console-inspector.js';
import { ConsolePageController } from './console-page.controller.js';
import { ConsoleReadController } from './console-read.controller.js';
import { ConsoleReplayController } from './console-replay.controller.js';
import { ConsoleReplays } from './console-replays.js';
import { ConsoleRequestGuard } from './console-request.guard.js';
import { REDIS_STREAMS_CONSOLE_OPTIONS, resolveConsoleOptions, type RedisStreamsConsoleOptions, type ResolvedConsoleOptions } from './console.options.js';

const BASES = [ConsolePageController, ConsoleReadController, ConsoleDeadLettersController, ConsoleReplayController, ConsoleAuditController] as const;

/**
 * Controllers of one registration: a subclass of each base per `register()` call, mounted at the console's path and
 * behind its guards (the console's own, then the user's). Fresh classes per call: no state is shared between two
 * registrations or two apps in one process (the route decorators are inherited from the bases).
 */
function mountedControllers(path: string, guard: Type<CanActivate> | CanActivate | undefined): Type[] {
  return BASES.map((Base) => {
    const Mounted = class extends (Base as Type) {};
    Object.defineProperty(Mounted, 'name', { value: `RedisStreams${Base.name}` });
    UseGuards(ConsoleRequestGuard, ...(guard ? [guard] : []))(Mounted);
    Controller(path)(Mounted);
    return Mounted;
  });
}

/**
 * An operator console for Redis Streams, served by the application's HTTP server: topics and partitions with their
 * length, consumer groups with lag and pending, consumers with their idle time, dead letters (inspect, redrive,
 * delete), replays with progress, schema versions, mirror lag. One static page (no external resources, strict
 * Content-Security-Policy) over a JSON API under the same path.
 *
 * ```ts
 * @Module({
 *   imports: [
 *     RedisStreamsEnterpriseModule.forRoot({ ...config, isGlobal: true }),
 *     RedisStreamsConsoleModule.register({ path: '/ops/streams', guard: AdminGuard, writes: true }),
 *   ],
 * })
 * export class AppModule {}
 * ```
 * Read-only by default. Writes (POST/DELETE) need `writes: true`, the guard's approval (it sees every request; tell
 * writes apart with `isConsoleWrite(context)` or the method) and pass a same-origin check (CSRF). The console needs
 * `RedisStreamsEnterpriseModule`'s providers: make that module global, or pass it in `imports`.
 */
@Module({})
export class RedisStreamsConsoleModule implements OnModuleInit {
  private readonly logger = new Logger('RedisStreamsConsole');

  /**
   * The console at `options.path`.
   * @throws InvalidOptionsError for a bad path, guard or writes option.
   */
  static register(options: RedisStreamsConsoleOptions = {}): DynamicModule {
    const resolved = resolveConsoleOptions(options);
    return {
      module: RedisStreamsConsoleModule,
      imports: [...(options.imports ?? [])],
      controllers: mountedControllers(resolved.path, options.guard),
      providers: [
        { provide: REDIS_STREAMS_CONSOLE_OPTIONS, useValue: resolved },
        ConsoleInspector,
        ConsoleReplays,
      ],
    };
  }

  constructor(@Inject(REDIS_STREAMS_CONSOLE_OPTIONS) private readonly options: ResolvedConsoleOptions) {}

  onModuleInit(): void {
    const { path, writes, hasGuard } = this.options;
    this.logger.log(`Console at ${path} (${writes ? 'writes allowed' : 'read-only'}${hasGuard ? '' : ', no guard'})`);
    if (!hasGuard) this.logger.warn(`The console at ${path} has no guard: anyone who reaches this HTTP server can read it`);
  }
}
