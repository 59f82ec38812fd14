import type { ResolvedRedisStreamsConfig } from '../config/redis-streams.options.js';
import { InvalidOptionsError } from '../errors/invalid-options.error.js';

/** Which of the seed's feature sections are switched on. */
export interface EnabledFeatures {
  readonly ordering: boolean;
  readonly partitioning: boolean;
  readonly schema: boolean;
  readonly replay: boolean;
  readonly deadLetter: boolean;
  readonly retryAttempts: number;
}

export function enabledFeatures(config: ResolvedRedisStreamsConfig): EnabledFeatures {
  return {
    ordering: config.ordering.enabled,
    partitioning: config.partitioning.enabled,
    schema: config.schema.enabled,
    replay: config.replay.enabled,
    deadLetter: config.deadLetter.enabled,
    retryAttempts: config.retry.attempts,
  };
}

/** Sections whose behaviour this version does not implement yet. */
const NOT_YET_AVAILABLE = [] as const;

/**
 * A guarantee that is configured must hold: enabling a section whose behaviour is not implemented in this version
 * fails at start instead of silently running without it.
 */
export function assertFeaturesAvailable(config: ResolvedRedisStreamsConfig): void {
  const violations = NOT_YET_AVAILABLE.filter((name: 'ordering') => config[name].enabled).map((name) => ({
    path: `${name}.enabled`,
    rule: 'notYetAvailable',
    message: `${name}.enabled is not supported by this version of nestjs-redis-streams-enterprise yet; set it to false`,
  }));
  if (violations.length > 0) throw new InvalidOptionsError(violations);
}
