import type { ResolvedRedisStreamsConfig } from '../config/redis-streams.options.js';

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
