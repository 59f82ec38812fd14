/**
 * @nestjs/terminus, loaded on the first health check: it is an optional peer (an app that never uses the health
 * indicator does not need it), and version 12 is an ES module, so it is imported, not required (Nest 11's terminus is
 * CommonJS; import() loads both).
 */
import { OptionalDependencyMissingError } from '../errors/optional-dependency-missing.error.js';

/** What the indicator uses of Terminus's `HealthIndicatorService` (Terminus 11 and 12). */
export interface HealthIndicatorSessionLike {
  up(data?: Record<string, unknown>): Record<string, Record<string, unknown>>;
  down(data?: Record<string, unknown>): Record<string, Record<string, unknown>>;
}

export interface HealthIndicatorServiceLike {
  check(key: string): HealthIndicatorSessionLike;
}

export type HealthIndicatorServiceClass = new () => HealthIndicatorServiceLike;

const TERMINUS = { feature: 'RedisStreamsHealthIndicator', packages: ['@nestjs/terminus'] } as const;

/** How the package is imported: import() in the library, a fake in specs (a missing package). */
export type ImportFn = (id: string) => Promise<unknown>;

/**
 * Terminus's HealthIndicatorService class.
 * @throws OptionalDependencyMissingError when @nestjs/terminus is not installed (or too old to have the service).
 */
export async function loadHealthIndicatorService(importFn: ImportFn = (id) => import(id)): Promise<HealthIndicatorServiceClass> {
  let terminus: { HealthIndicatorService?: HealthIndicatorServiceClass; default?: { HealthIndicatorService?: HealthIndicatorServiceClass } };
  try {
    terminus = (await importFn('@nestjs/terminus')) as typeof terminus;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException | undefined)?.code;
    if (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') {
      throw new OptionalDependencyMissingError('@nestjs/terminus', TERMINUS.feature, TERMINUS.packages, { cause: error });
    }
    throw error;
  }
  // Terminus 11 is CommonJS: its named exports are found by Node's static analysis, else they are on `default`.
  const Service = terminus.HealthIndicatorService ?? terminus.default?.HealthIndicatorService;
  if (typeof Service !== 'function') {
    // Terminus before 11 has no HealthIndicatorService: the same fix (install a current one).
    throw new OptionalDependencyMissingError('@nestjs/terminus', `${TERMINUS.feature} (Terminus 11 or later)`, TERMINUS.packages);
  }
  return Service;
}
