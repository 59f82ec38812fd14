/**
 * Checks of one reader/writer schema pair that look at single keywords (type, enum/const, numeric, string, array and
 * object constraints) and never recurse: the structural walk (compatibility-can-read.ts) calls them once per schema
 * object. Kept apart so each rule's test and advice text can be read without the recursion around it.
 */
import { ANNOTATION_KEYWORDS, boundHolds, describeBound, enumValuesOf, isJsonSchemaObject, jsonEqual, lowerBound, typesOf, upperBound } from './json-schema.js';
import type { JsonSchema, JsonSchemaType } from './json-schema.js';
import { change, type BreakingChange } from './compatibility-rules.js';

/** Keywords compared below; any other non-annotation keyword that differs is `unsupported-change`. */
const MODELLED_KEYWORDS: ReadonlySet<string> = new Set([
  '$ref', 'type', 'nullable', 'enum', 'const', 'anyOf', 'oneOf', 'properties', 'required', 'additionalProperties', 'items',
  'minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum', 'multipleOf', 'minLength', 'maxLength', 'pattern',
  'format', 'minItems', 'maxItems', 'uniqueItems', 'minProperties', 'maxProperties',
]);

export function unsupportedKeywords(reader: JsonSchema, writer: JsonSchema, path: string): BreakingChange[] {
  const keywords = new Set([...Object.keys(reader), ...Object.keys(writer)]);
  return [...keywords]
    .filter((k) => !MODELLED_KEYWORDS.has(k) && !ANNOTATION_KEYWORDS.has(k) && !jsonEqual(reader[k], writer[k]))
    .map((k) => change(path, 'unsupported-change', `${path}: keyword "${k}" differs between reader and writer and this checker cannot prove the change compatible; keep "${k}" unchanged or register with compatibility "none"`));
}

function describeTypes(types: ReadonlySet<JsonSchemaType> | undefined): string {
  if (types === undefined) return 'any type';
  return types.size === 0 ? 'no value' : [...types].join(' | ');
}

export function compareTypes(reader: JsonSchema, writer: JsonSchema, path: string): BreakingChange[] {
  const readerTypes = typesOf(reader);
  if (readerTypes === undefined) return [];
  const writerTypes = typesOf(writer);
  // integer data is valid number data, so a number reader reads integer writers (not the reverse).
  const unreadable = writerTypes === undefined
    ? ['any type']
    : [...writerTypes].filter((t) => !readerTypes.has(t) && !(t === 'integer' && readerTypes.has('number')));
  if (unreadable.length === 0) return [];
  return [change(path, 'type-changed', `${path}: the writer may produce ${unreadable.join(' | ')} but the reader accepts ${describeTypes(readerTypes)}; keep the type, or only widen it for readers (integer -> number is a widening, number -> integer is not)`)];
}

export function compareEnums(reader: JsonSchema, writer: JsonSchema, path: string): BreakingChange[] {
  const readerValues = enumValuesOf(reader);
  if (readerValues === undefined) return [];
  const writerValues = enumValuesOf(writer);
  if (writerValues === undefined) {
    return [change(path, 'enum-narrowed', `${path}: the reader only accepts ${JSON.stringify(readerValues)} but the writer may produce any ${describeTypes(typesOf(writer))}; drop the enum/const from the reader`)];
  }
  const missing = writerValues.filter((v) => !readerValues.some((r) => jsonEqual(r, v)));
  if (missing.length === 0) return [];
  return [change(path, 'enum-narrowed', `${path}: the writer may produce ${missing.map((v) => JSON.stringify(v)).join(', ')}, which the reader's enum does not list; add the value(s) to the reader's enum (add values to readers before writers use them, remove them from writers before readers)`)];
}

/** When the writer lists its values, a reader constraint holds if every listed value passes it. */
function everyWrittenValue(writer: JsonSchema, test: (value: unknown) => boolean): boolean {
  const values = enumValuesOf(writer);
  return values !== undefined && values.every(test);
}

const NUMERIC: readonly JsonSchemaType[] = ['number', 'integer'];
const CONSTRAINT_KINDS: Readonly<Record<string, readonly JsonSchemaType[]>> = {
  'lower bound': NUMERIC, 'upper bound': NUMERIC, multipleOf: NUMERIC,
  minLength: ['string'], maxLength: ['string'], pattern: ['string'], format: ['string', ...NUMERIC],
  minItems: ['array'], maxItems: ['array'], uniqueItems: ['array'], minProperties: ['object'], maxProperties: ['object'],
};

export function compareConstraints(reader: JsonSchema, writer: JsonSchema, path: string): BreakingChange[] {
  const changes: BreakingChange[] = [];
  const writerTypes = typesOf(writer);
  const tightened = (keyword: string, readerValue: string, writerValue: string): void => {
    // A constraint only restricts values of its kind: a string-only writer never meets a minimum.
    const kinds = CONSTRAINT_KINDS[keyword] ?? [];
    if (writerTypes !== undefined && !kinds.some((kind) => writerTypes.has(kind))) return;
    changes.push(change(path, 'constraint-tightened', `${path}: the reader's ${keyword} (${readerValue}) is stricter than the writer's (${writerValue}), so written data may fail it; relax the reader to at most the writer's constraint`));
  };
  const isNumber = (v: unknown): v is number => typeof v === 'number';
  const isString = (v: unknown): v is string => typeof v === 'string';

  const readerLow = lowerBound(reader);
  if (!boundHolds(readerLow, lowerBound(writer), (a, b) => a > b)
    && !everyWrittenValue(writer, (v) => !isNumber(v) || v > readerLow!.value || (v === readerLow!.value && !readerLow!.exclusive))) {
    tightened('lower bound', describeBound(readerLow, 'minimum'), describeBound(lowerBound(writer), 'minimum'));
  }
  const readerHigh = upperBound(reader);
  if (!boundHolds(readerHigh, upperBound(writer), (a, b) => a < b)
    && !everyWrittenValue(writer, (v) => !isNumber(v) || v < readerHigh!.value || (v === readerHigh!.value && !readerHigh!.exclusive))) {
    tightened('upper bound', describeBound(readerHigh, 'maximum'), describeBound(upperBound(writer), 'maximum'));
  }
  if (reader.multipleOf !== undefined) {
    const step = reader.multipleOf;
    const isMultiple = (n: number): boolean => Math.abs(n / step - Math.round(n / step)) < 1e-9;
    const writerTypes = typesOf(writer);
    const integersOnly = step === 1 && writerTypes !== undefined && [...writerTypes].every((t) => t === 'integer');
    if (!integersOnly && !(writer.multipleOf !== undefined && isMultiple(writer.multipleOf))
      && !everyWrittenValue(writer, (v) => !isNumber(v) || isMultiple(v))) {
      tightened('multipleOf', String(step), String(writer.multipleOf ?? 'none'));
    }
  }
  const minimums = [['minLength', (v: unknown) => (isString(v) ? [...v].length : undefined)], ['minItems', (v: unknown) => (Array.isArray(v) ? v.length : undefined)], ['minProperties', (v: unknown) => (isJsonSchemaObject(v) ? Object.keys(v).length : undefined)]] as const;
  for (const [keyword, size] of minimums) {
    const limit = reader[keyword];
    if (limit !== undefined && limit > (writer[keyword] ?? 0) && !everyWrittenValue(writer, (v) => (size(v) ?? limit) >= limit)) {
      tightened(keyword, String(limit), String(writer[keyword] ?? 'none'));
    }
  }
  const maximums = [['maxLength', minimums[0][1]], ['maxItems', minimums[1][1]], ['maxProperties', minimums[2][1]]] as const;
  for (const [keyword, size] of maximums) {
    const limit = reader[keyword];
    const written = writer[keyword];
    if (limit !== undefined && (written === undefined || written > limit) && !everyWrittenValue(writer, (v) => (size(v) ?? limit) <= limit)) {
      tightened(keyword, String(limit), String(written ?? 'none'));
    }
  }
  if (reader.pattern !== undefined && reader.pattern !== writer.pattern && !everyWrittenValue(writer, (v) => !isString(v) || matches(reader.pattern!, v))) {
    // Two different regular expressions cannot be compared in general: any change counts as a tightening.
    tightened('pattern', JSON.stringify(reader.pattern), writer.pattern === undefined ? 'none' : JSON.stringify(writer.pattern));
  }
  if (reader.format !== undefined && reader.format !== writer.format) {
    tightened('format', JSON.stringify(reader.format), writer.format === undefined ? 'none' : JSON.stringify(writer.format));
  }
  if (reader.uniqueItems === true && writer.uniqueItems !== true) tightened('uniqueItems', 'true', String(writer.uniqueItems ?? 'none'));
  return changes;
}

function matches(pattern: string, value: string): boolean {
  try {
    return new RegExp(pattern, 'u').test(value);
  } catch {
    // A pattern JavaScript cannot compile proves nothing: treat the value as failing it.
    return false;
  }
}
