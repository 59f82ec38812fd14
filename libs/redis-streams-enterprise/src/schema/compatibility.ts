/**
 * Confluent-style schema compatibility: the mode driver. It decides which earlier versions a candidate is checked
 * against and in which direction (backward, forward, full, each optionally transitive), and words each breaking
 * change for its mode and version. The reader/writer comparison itself is compatibility-can-read.ts; the rule ids
 * and shared types are compatibility-rules.ts. This file stays the entry point the rest of the package imports.
 */
import type { JsonSchema } from './json-schema.js';
import { canRead } from './compatibility-can-read.js';
import type { BreakingChange, CompatibilityOptions } from './compatibility-rules.js';

export { canRead } from './compatibility-can-read.js';
export { COMPATIBILITY_RULES } from './compatibility-rules.js';
export type { BreakingChange, CanReadOptions, CompatibilityOptions, NewerSide, OpenContentModel } from './compatibility-rules.js';

export type CompatibilityMode =
  | 'none' | 'backward' | 'forward' | 'full' | 'backward_transitive' | 'forward_transitive' | 'full_transitive';

export interface CompatibilityResult {
  readonly compatible: boolean;
  readonly breakingChanges: readonly BreakingChange[];
}

/**
 * Confluent-style compatibility of `candidate` with the earlier versions.
 * backward: the candidate (as reader) reads data written with the latest earlier version;
 * forward: the latest earlier version (as reader) reads data written with the candidate;
 * full: both; `_transitive`: against every earlier version, not only the latest; none: always compatible.
 * @param previous earlier versions oldest first, each with its version label.
 */
export function checkCompatibility(
  previous: readonly { version: string; schema: JsonSchema }[],
  candidate: JsonSchema,
  mode: CompatibilityMode,
  options: CompatibilityOptions = {},
): CompatibilityResult {
  if (mode === 'none' || previous.length === 0) return { compatible: true, breakingChanges: [] };
  const transitive = mode.endsWith('_transitive');
  const base = mode.replace('_transitive', '');
  const against = transitive ? previous : previous.slice(-1);
  const breakingChanges: BreakingChange[] = [];
  for (const { version, schema } of against) {
    if (base === 'backward' || base === 'full') {
      for (const change of canRead(candidate, schema, '$', { ...options, newer: 'reader' })) {
        breakingChanges.push({ ...change, message: `Backward, against version ${version} (the new schema reading data written with it): ${change.message}`, againstVersion: version });
      }
    }
    if (base === 'forward' || base === 'full') {
      for (const change of canRead(schema, candidate, '$', { ...options, newer: 'writer' })) {
        breakingChanges.push({ ...change, message: `Forward, against version ${version} (it reading data written with the new schema): ${change.message}`, againstVersion: version });
      }
    }
  }
  return { compatible: breakingChanges.length === 0, breakingChanges };
}
