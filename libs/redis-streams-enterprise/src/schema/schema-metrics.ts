/** Counts of one direction (emit or consume) in `SchemaManager.getMetrics()`. */
export interface SchemaDirectionCounts {
  /** Payloads validated and found valid. */
  readonly valid: number;
  /** Payloads that failed validation or could not be mapped: refused or dead-lettered in `strict`, passed on in `warn`. */
  readonly invalid: number;
  /** Payloads of an event type with a schema that were not validated (`validationMode: 'ignore'`). */
  readonly skipped: number;
}

/** Snapshot of `SchemaManager.getMetrics()`. */
export interface SchemaMetricsSnapshot {
  readonly validationMode: 'strict' | 'warn' | 'ignore';
  readonly emit: SchemaDirectionCounts;
  readonly consume: SchemaDirectionCounts & {
    /** Messages handed to a handler mapped from the version they were written with to the one it asked for. */
    readonly upcast: number;
    /** Messages that could not be mapped to the handler's version (unknown or incompatible version); also in `invalid`. */
    readonly unmappable: number;
  };
}

/** In-process counters of one SchemaManager (fixed memory). */
export class SchemaMetrics {
  emitValid = 0;
  emitInvalid = 0;
  emitSkipped = 0;
  consumeValid = 0;
  consumeInvalid = 0;
  consumeSkipped = 0;
  upcast = 0;
  unmappable = 0;

  snapshot(validationMode: SchemaMetricsSnapshot['validationMode']): SchemaMetricsSnapshot {
    return {
      validationMode,
      emit: { valid: this.emitValid, invalid: this.emitInvalid, skipped: this.emitSkipped },
      consume: {
        valid: this.consumeValid,
        invalid: this.consumeInvalid,
        skipped: this.consumeSkipped,
        upcast: this.upcast,
        unmappable: this.unmappable,
      },
    };
  }
}
