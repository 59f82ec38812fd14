/**
 * Can data written with one schema be read with another? The structural walk behind every compatibility mode:
 * it follows `$ref`s (coinductively, for recursive schemas), `anyOf`/`oneOf` unions, object properties and array
 * items, and hands each schema object to the per-keyword checks (compatibility-keyword-checks.ts). The modes
 * (backward, forward, full, transitive) only choose which pairs to walk; see compatibility.ts.
 */
import { ANNOTATION_KEYWORDS, allowsNull, enumValuesOf, isJsonSchemaObject, jsonEqual, resolveLocalRef, typesOf, unionBranches, withoutNull } from './json-schema.js';
import type { JsonSchema, RefResolver } from './json-schema.js';
import { change, type BreakingChange, type CanReadOptions, type NewerSide, type OpenContentModel } from './compatibility-rules.js';
import { compareConstraints, compareEnums, compareTypes, unsupportedKeywords } from './compatibility-keyword-checks.js';

/**
 * Can data written with `writer` be read by a reader expecting `reader`? Returns every breaking
 * change found (empty: compatible). When unsure, it reports a change rather than claiming
 * compatibility.
 */
export function canRead(reader: JsonSchema, writer: JsonSchema, path = '$', options: CanReadOptions = {}): BreakingChange[] {
  if (jsonEqual(reader, writer)) return [];
  const context: Context = {
    newer: options.newer ?? 'reader',
    openContentModel: options.openContentModel ?? 'lenient',
    resolveReader: (ref) => resolveLocalRef(reader, ref),
    resolveWriter: (ref) => resolveLocalRef(writer, ref),
    refPairsInProgress: new Set(),
  };
  return dedupe(compare(reader, writer, path, context, 0));
}

interface Context {
  readonly newer: NewerSide;
  readonly openContentModel: OpenContentModel;
  readonly resolveReader: RefResolver;
  readonly resolveWriter: RefResolver;
  /** `$ref` pairs being compared: meeting one again means a recursive schema came round. */
  readonly refPairsInProgress: Set<string>;
}

/** Deep enough for any real payload; deeper only happens with recursive $refs that drift apart. */
const MAX_DEPTH = 256;

function compare(reader: JsonSchema | boolean, writer: JsonSchema | boolean, path: string, context: Context, depth: number): BreakingChange[] {
  if (reader === true || writer === false) return [];
  if (reader === false) {
    return [change(path, 'type-changed', `${path}: the reader allows no value here but the writer may produce one; remove the property from the writer or allow it in the reader`)];
  }
  const written: JsonSchema = writer === true ? {} : writer;
  if (jsonEqual(reader, written) && !JSON.stringify(reader).includes('"$ref"')) return [];
  if (depth > MAX_DEPTH) {
    return [change(path, 'unsupported-change', `${path}: schemas nest deeper than ${MAX_DEPTH} levels (recursive $ref?) and could not be compared; keep the recursive part unchanged`)];
  }
  if (typeof reader.$ref === 'string' || typeof written.$ref === 'string') return compareRefs(reader, written, path, context, depth);

  const changes: BreakingChange[] = [];
  if (allowsNull(written, context.resolveWriter) && !allowsNull(reader, context.resolveReader)) {
    changes.push(change(path, 'nullable-removed', `${path}: the writer allows null but the reader does not; keep null allowed in the reader (type: [..., "null"], or .nullable() in zod)`));
  }
  changes.push(...compareNonNull(withoutNull(reader), withoutNull(written), path, context, depth));
  return changes;
}

function compareRefs(reader: JsonSchema, writer: JsonSchema, path: string, context: Context, depth: number): BreakingChange[] {
  const sides = [
    { schema: reader, resolve: context.resolveReader, name: 'reader' },
    { schema: writer, resolve: context.resolveWriter, name: 'writer' },
  ];
  const resolved: (JsonSchema | boolean)[] = [];
  for (const { schema, resolve, name } of sides) {
    const ref = schema.$ref;
    if (typeof ref !== 'string') { resolved.push(schema); continue; }
    const target = resolve(ref);
    const merged = target === undefined ? undefined : withRefSiblings(target, schema);
    if (merged === undefined) {
      return [change(path, 'unsupported-change', target === undefined
        ? `${path}: the ${name}'s $ref "${ref}" does not resolve to the root's $defs or definitions and could not be compared; embed the referenced schemas under the root's $defs or inline them (a DTO class registered as such gets its nested DTOs embedded; hand-made class-validator-jsonschema output needs the definitions from validationMetadatasToSchemas())`
        : `${path}: the ${name}'s $ref "${ref}" has sibling keywords that constrain what the referenced schema constrains, and could not be compared; move them into the referenced schema or inline it`)];
    }
    resolved.push(merged);
  }
  if (typeof reader.$ref === 'string' && typeof writer.$ref === 'string') {
    // Coinductive: a pair already under comparison is assumed compatible; any break shows up on the first pass.
    // Siblings are part of the key: the same $ref constrained differently is another pair.
    const siblingsOf = (schema: JsonSchema): string =>
      JSON.stringify(Object.entries(schema).filter(([k]) => k !== '$ref' && !ANNOTATION_KEYWORDS.has(k)));
    const key = `${reader.$ref}\u0000${writer.$ref}\u0000${siblingsOf(reader)}\u0000${siblingsOf(writer)}`;
    if (context.refPairsInProgress.has(key)) return [];
    context.refPairsInProgress.add(key);
    try {
      return compare(resolved[0], resolved[1], path, context, depth + 1);
    } finally {
      context.refPairsInProgress.delete(key);
    }
  }
  return compare(resolved[0], resolved[1], path, context, depth + 1);
}

/**
 * Keywords that constrain each other within one schema object: `{ $ref: A, additionalProperties: false }` is not
 * A with `additionalProperties: false` added when A declares `properties` (the sibling would then allow them).
 */
const INTERACTING_KEYWORDS: readonly (readonly string[])[] = [
  ['properties', 'patternProperties', 'additionalProperties', 'unevaluatedProperties'],
  ['items', 'prefixItems', 'additionalItems', 'unevaluatedItems', 'contains', 'minContains', 'maxContains'],
  ['if', 'then', 'else'],
  ['type', 'nullable'],
  ['$ref', '$dynamicRef'],
];

/**
 * A `$ref` with sibling keywords (2019-09+, and what Ajv applies in every draft) means "the referenced schema AND the
 * siblings". That is the referenced schema with the siblings added when no keyword is on both sides, also not through
 * keywords that constrain each other; otherwise undefined (not comparable). Annotations never matter.
 */
function withRefSiblings(target: JsonSchema | boolean, schema: JsonSchema): JsonSchema | boolean | undefined {
  const { $ref: _ref, ...rest } = schema;
  // A sibling that repeats the target (`type: 'object'` next to a reference to an object schema) adds nothing.
  const siblings = Object.fromEntries(Object.entries(rest).filter(([k, v]) =>
    !ANNOTATION_KEYWORDS.has(k) && !(isJsonSchemaObject(target) && Object.prototype.hasOwnProperty.call(target, k) && jsonEqual(target[k], v))));
  const keys = Object.keys(siblings);
  if (keys.length === 0 || target === false) return target;
  if (target === true) return siblings;
  const targetKeys = Object.keys(target).filter((k) => !ANNOTATION_KEYWORDS.has(k));
  const clash = keys.some((k) => targetKeys.includes(k))
    || INTERACTING_KEYWORDS.some((group) => keys.some((k) => group.includes(k)) && targetKeys.some((k) => group.includes(k)));
  return clash ? undefined : { ...target, ...siblings };
}

function compareNonNull(reader: JsonSchema | boolean, writer: JsonSchema | boolean, path: string, context: Context, depth: number): BreakingChange[] {
  if (!isJsonSchemaObject(reader) || !isJsonSchemaObject(writer)) return compare(reader, writer, path, context, depth + 1);
  if (typeof reader.$ref === 'string' || typeof writer.$ref === 'string') return compare(reader, writer, path, context, depth + 1);

  const writerUnion = unionBranches(writer);
  if (writerUnion && writerUnion.branches.length > 1) {
    // Every value the writer produces matches some branch, so each branch must be readable on its own.
    // Outer keywords are merged in with the branch winning: that can only make the writer look looser.
    const { [writerUnion.keyword]: _union, ...outer } = writer;
    return writerUnion.branches.flatMap((branch) =>
      compare(reader, branch === true ? outer : branch === false ? false : { ...outer, ...branch }, path, context, depth + 1));
  }
  const readerUnion = unionBranches(reader);
  if (readerUnion && readerUnion.branches.length > 1) return compareReaderUnion(reader, readerUnion, writer, path, context, depth);

  const changes: BreakingChange[] = [
    ...unsupportedKeywords(reader, writer, path),
    ...compareTypes(reader, writer, path),
    ...compareEnums(reader, writer, path),
    ...compareConstraints(reader, writer, path),
    ...compareObjects(reader, writer, path, context, depth),
    ...compareItems(reader, writer, path, context, depth),
  ];
  return changes;
}

function compareReaderUnion(
  reader: JsonSchema,
  union: { keyword: 'anyOf' | 'oneOf'; branches: readonly (JsonSchema | boolean)[] },
  writer: JsonSchema,
  path: string,
  context: Context,
  depth: number,
): BreakingChange[] {
  if (union.keyword === 'oneOf' && !branchesDisjoint(union.branches)) {
    return [change(path, 'unsupported-change', `${path}: the reader's oneOf branches may overlap, so a written value could match two of them; use anyOf, or distinct types or a const discriminator per branch`)];
  }
  // The writer must satisfy the reader's outer keywords and at least one branch.
  const { [union.keyword]: _union, ...outer } = reader;
  const outerChanges = compareNonNull(outer, writer, path, context, depth + 1);
  let best: BreakingChange[] | undefined;
  for (const branch of union.branches) {
    const branchChanges = compare(branch, writer, path, context, depth + 1);
    if (branchChanges.length === 0) return outerChanges;
    if (!best || branchChanges.length < best.length) best = branchChanges;
  }
  return [...outerChanges, ...(best ?? [])];
}

/** True when no value can match two branches: distinct types, or a required const/enum discriminator. */
function branchesDisjoint(branches: readonly (JsonSchema | boolean)[]): boolean {
  for (let i = 0; i < branches.length; i++) {
    for (let j = i + 1; j < branches.length; j++) {
      const a = branches[i];
      const b = branches[j];
      if (a === false || b === false) continue;
      if (!isJsonSchemaObject(a) || !isJsonSchemaObject(b)) return false;
      const ta = typesOf(a);
      const tb = typesOf(b);
      if (ta && tb && ![...ta].some((t) => tb.has(t) || (t === 'integer' && tb.has('number')) || (t === 'number' && tb.has('integer')))) continue;
      const discriminated = Object.keys(a.properties ?? {}).some((key) => {
        const pa = a.properties?.[key];
        const pb = b.properties?.[key];
        if (!isJsonSchemaObject(pa) || !isJsonSchemaObject(pb)) return false;
        if (!(a.required ?? []).includes(key) || !(b.required ?? []).includes(key)) return false;
        const va = enumValuesOf(pa);
        const vb = enumValuesOf(pb);
        return va !== undefined && vb !== undefined && !va.some((v) => vb.some((w) => jsonEqual(v, w)));
      });
      if (!discriminated) return false;
    }
  }
  return true;
}

function childPath(path: string, key: string): string {
  return /^[A-Za-z_$][A-Za-z0-9_$]*$/.test(key) ? `${path}.${key}` : `${path}[${JSON.stringify(key)}]`;
}

function compareObjects(reader: JsonSchema, writer: JsonSchema, path: string, context: Context, depth: number): BreakingChange[] {
  const readerTypes = typesOf(reader);
  const writerTypes = typesOf(writer);
  if ((readerTypes && !readerTypes.has('object')) || (writerTypes && !writerTypes.has('object'))) return [];
  const readerProps = reader.properties ?? {};
  const writerProps = writer.properties ?? {};
  const readerRequired = new Set(reader.required ?? []);
  const writerRequired = new Set(writer.required ?? []);
  const writerExtra: JsonSchema | boolean = writer.additionalProperties ?? true;
  const changes: BreakingChange[] = [];

  for (const key of new Set([...Object.keys(readerProps), ...readerRequired])) {
    const at = childPath(path, key);
    const readerProp = readerProps[key];
    const hasDefault = isJsonSchemaObject(readerProp) && readerProp.default !== undefined;
    const missingRequired = readerRequired.has(key) && !writerRequired.has(key) && !hasDefault;
    if (missingRequired) {
      changes.push(context.newer === 'reader'
        ? change(at, 'field-added-required-without-default', `${at}: the new schema requires "${key}" but data written with the old schema may lack it; give "${key}" a default or make it optional`)
        : change(at, 'field-removed-still-required', `${at}: the new schema may omit "${key}" (removed or made optional) but the old schema requires it; keep writing "${key}" until every reader gives it a default or makes it optional`));
    }
    if (readerProp === undefined) continue;
    if (Object.prototype.hasOwnProperty.call(writerProps, key)) {
      changes.push(...compare(readerProp, writerProps[key], at, context, depth + 1));
    } else if (writerRequired.has(key)) {
      // Required but not declared: the writer always writes it, with whatever its additionalProperties allow.
      changes.push(...compare(readerProp, writerExtra, at, context, depth + 1));
    } else if (context.openContentModel === 'strict' && !missingRequired && writerExtra !== false && compare(readerProp, writerExtra, at, context, depth + 1).length > 0) {
      // The writer does not declare the property but allows undeclared ones, so it may have written
      // this name with any value (Confluent's PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL). Skipped when the
      // property is already reported missing: one change per property says what to fix.
      changes.push(context.newer === 'reader'
        ? change(at, 'property-added-to-open-model', `${at}: the old schema did not declare "${key}" but allowed undeclared properties, so old data may hold any value under it; accept any value for "${key}", rename it, or close the old schema with additionalProperties: false`)
        : change(at, 'property-removed-from-open-model', `${at}: the new schema no longer declares "${key}" but allows undeclared properties, so it may write any value under it; keep declaring "${key}" or set additionalProperties: false in the new schema`));
    }
  }

  const readerExtra: JsonSchema | boolean = reader.additionalProperties ?? true;
  if (readerExtra === true) return changes;
  const undeclared = Object.keys(writerProps).filter((key) => !Object.prototype.hasOwnProperty.call(readerProps, key));
  if (readerExtra === false) {
    if (undeclared.length > 0 || writerExtra !== false) {
      const what = undeclared.length > 0 ? `properties ${undeclared.map((k) => JSON.stringify(k)).join(', ')}` : 'undeclared properties';
      changes.push(change(path, 'additional-properties-closed', `${path}: the reader sets additionalProperties: false but the writer may produce ${what}${undeclared.length > 0 && writerExtra !== false ? ' and other undeclared properties' : ''}; declare them in the reader or leave additionalProperties open`));
    }
    return changes;
  }
  for (const key of undeclared) changes.push(...compare(readerExtra, writerProps[key], childPath(path, key), context, depth + 1));
  if (writerExtra !== false) changes.push(...compare(readerExtra, writerExtra, `${path}.*`, context, depth + 1));
  return changes;
}

function compareItems(reader: JsonSchema, writer: JsonSchema, path: string, context: Context, depth: number): BreakingChange[] {
  if (reader.items === undefined && writer.items === undefined) return [];
  const readerTypes = typesOf(reader);
  const writerTypes = typesOf(writer);
  if ((readerTypes && !readerTypes.has('array')) || (writerTypes && !writerTypes.has('array'))) return [];
  const at = `${path}[]`;
  const readerItems = reader.items ?? true;
  const writerItems = writer.items ?? true;
  if (!isSingleSchema(readerItems) || !isSingleSchema(writerItems)) {
    return jsonEqual(readerItems, writerItems) ? [] : [change(at, 'items-incompatible', `${at}: tuple-form items changed and cannot be compared position by position; keep the tuple unchanged`)];
  }
  if (readerItems === false && writerItems !== false && !(writer.maxItems === 0)) {
    return [change(at, 'items-incompatible', `${at}: the reader allows no array items (items: false) but the writer may produce some; allow items in the reader`)];
  }
  return compare(readerItems, writerItems, at, context, depth + 1);
}

function isSingleSchema(items: JsonSchema | boolean | readonly (JsonSchema | boolean)[]): items is JsonSchema | boolean {
  return !Array.isArray(items);
}

function dedupe(changes: readonly BreakingChange[]): BreakingChange[] {
  const seen = new Set<string>();
  return changes.filter((c) => {
    const key = `${c.path}\u0000${c.rule}\u0000${c.message}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}
