/**
 * The vocabulary of the compatibility checker: what a breaking change is, the rule ids it carries and the options
 * that decide which rule applies. It sits apart so the mode driver (compatibility.ts), the structural walk
 * (compatibility-can-read.ts) and the per-keyword checks (compatibility-keyword-checks.ts) share one definition,
 * and so the README's rules table has one source.
 */

export interface BreakingChange {
  /** JSON path of the offending value, `$` for the root, `[]` for array items: `$.lines[].sku`. */
  readonly path: string;
  /** One of the ids in {@link COMPATIBILITY_RULES}. */
  readonly rule: string;
  /** What breaks, where, and what to do about it. */
  readonly message: string;
  /** The earlier version the candidate was checked against (set by {@link checkCompatibility}). */
  readonly againstVersion?: string;
}

/**
 * Which side of a canRead check is the newer schema. It only changes rule ids and advice: the
 * structural test is the same. A property the reader requires and the writer may lack is
 * "a required field was added" when the reader is new (backward) and "a field the old readers
 * require was removed" when the writer is new (forward). Both ids are kept, rather than folded into
 * one, so the rules table reads per mode: the first only ever breaks backward, the second forward.
 */
export type NewerSide = 'reader' | 'writer';

/**
 * How to treat a property the reader declares but an open writer (no `additionalProperties: false`)
 * does not. `lenient` assumes the writer never wrote it, so adding an optional property is
 * compatible (Avro's rule, and what DTO and hand-written schemas, which are open, need to evolve).
 * `strict` is Confluent's JSON Schema rule (PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL): the open writer
 * may have written that name with any value, so the reader's schema for it must accept anything.
 */
export type OpenContentModel = 'lenient' | 'strict';

export interface CompatibilityOptions {
  /** @default 'lenient' */
  readonly openContentModel?: OpenContentModel;
}

export interface CanReadOptions extends CompatibilityOptions {
  /** Which side is the newer schema; only rule ids and advice depend on it. @default 'reader' */
  readonly newer?: NewerSide;
}

/**
 * The rules table for the README: for each rule, the change that triggers it and which modes it
 * breaks (`full` breaks whenever either does; `_transitive` modes check every earlier version).
 */
export const COMPATIBILITY_RULES: readonly {
  readonly rule: string;
  readonly change: string;
  readonly breaksBackward: boolean;
  readonly breaksForward: boolean;
}[] = [
  { rule: 'field-added-required-without-default', change: 'add a required property without `default` (or make an optional one required)', breaksBackward: true, breaksForward: false },
  { rule: 'field-removed-still-required', change: 'remove a required property (or make it optional)', breaksBackward: false, breaksForward: true },
  { rule: 'property-added-to-open-model', change: 'only with `openContentModel: \'strict\'`: declare a new property with a constrained schema when the old schema allowed undeclared properties', breaksBackward: true, breaksForward: false },
  { rule: 'property-removed-from-open-model', change: 'only with `openContentModel: \'strict\'`: remove a declared property while leaving the new schema open to undeclared properties', breaksBackward: false, breaksForward: true },
  { rule: 'type-changed', change: 'change a type: number -> string breaks both; number -> integer breaks backward; integer -> number breaks forward', breaksBackward: true, breaksForward: true },
  { rule: 'enum-narrowed', change: 'remove an enum value (breaks backward) or add one (breaks forward)', breaksBackward: true, breaksForward: true },
  { rule: 'nullable-removed', change: 'drop null (breaks backward) or allow null (breaks forward)', breaksBackward: true, breaksForward: true },
  { rule: 'additional-properties-closed', change: 'set `additionalProperties: false` (breaks backward); adding a property to a closed schema breaks forward', breaksBackward: true, breaksForward: true },
  { rule: 'constraint-tightened', change: 'tighten minimum/maximum/exclusive*/multipleOf/minLength/maxLength/minItems/maxItems/minProperties/maxProperties/pattern/format/uniqueItems (breaks backward); loosening breaks forward', breaksBackward: true, breaksForward: true },
  { rule: 'items-incompatible', change: 'array `items: false` or tuple-form `items` changed (changes inside `items` are reported with their own rule at `path[]`)', breaksBackward: true, breaksForward: true },
  { rule: 'unsupported-change', change: 'any change to a keyword this checker does not model (allOf, not, if/then/else, patternProperties, prefixItems, unresolvable $ref, …)', breaksBackward: true, breaksForward: true },
];

/** A breaking change before the mode driver adds its direction, version and `againstVersion`. */
export function change(path: string, rule: string, message: string): BreakingChange {
  return { path, rule, message };
}
