import { RedisStreamsError } from './redis-streams.error.js';

/** One violated rule of the configuration. */
export interface ConfigViolation {
  /** Dotted path of the offending field, e.g. `consumer.blockMs`. */
  readonly path: string;
  /** The rule that failed (class-validator constraint name, or a cross-field rule name). */
  readonly rule: string;
  /** Human-readable sentence that names the path and the rule. */
  readonly message: string;
}

/** Thrown at start-up when the configuration breaks one or more rules; lists every violation. */
export class InvalidOptionsError extends RedisStreamsError {
  readonly violations: readonly ConfigViolation[];

  constructor(violations: readonly ConfigViolation[]) {
    super(
      'INVALID_OPTIONS',
      `Invalid nestjs-redis-streams-enterprise configuration: ${violations.map((v) => v.message).join('; ')}`,
    );
    this.violations = violations;
  }
}
