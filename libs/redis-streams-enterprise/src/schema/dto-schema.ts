import 'reflect-metadata';
import { defaultMetadataStorage } from 'class-transformer/cjs/storage.js';
import { ValidationTypes } from 'class-validator';
import type { targetConstructorToSchema } from 'class-validator-jsonschema';
import { loadOptional, type OptionalFeature, type RequireFn } from '../runtime/optional-dependency.js';
import { isJsonSchemaObject, jsonEqual, type JsonSchema } from './json-schema.js';

/** The optional peer a DTO class as a schema needs (zod and plain JSON Schemas do without it). */
export const DTO_SCHEMAS: OptionalFeature = { feature: 'a DTO class as a schema', packages: ['class-validator-jsonschema'] };

/**
 * class-validator-jsonschema's converter, loaded on the first DTO converted (it pulls in lodash pieces, openapi3-ts
 * and yaml, which apps without DTO schemas should not have to install).
 * @throws OptionalDependencyMissingError when class-validator-jsonschema is not installed.
 */
export function loadDtoConverter(requireFn?: RequireFn): typeof targetConstructorToSchema {
  return loadOptional<{ targetConstructorToSchema: typeof targetConstructorToSchema }>('class-validator-jsonschema', DTO_SCHEMAS, requireFn)
    .targetConstructorToSchema;
}

type ConversionOptions = NonNullable<Parameters<typeof targetConstructorToSchema>[1]>;
type Converter = NonNullable<ConversionOptions['additionalConverters']>[string];

/** Points at a nested DTO while the classes are converted one by one; never left in a result. */
const NESTED_REF = '#/x-nested-dto/';
/**
 * class-validator-jsonschema's fallback converter (custom validators) points at the design type of a class-typed
 * property. class-validator does not look inside such a value (no `@ValidateNested`), so neither does the schema.
 */
const UNVALIDATED_REF = '#/x-unvalidated-class/';
/** Where a recursive DTO is kept, inside the schema itself. */
const DEFS_REF = '#/$defs/';

/** The fields of class-validator's `ValidationMetadata` the nested converter reads. */
interface PropertyMetadata {
  readonly target: Function | string;
  readonly propertyName: string;
}

const PRIMITIVES = new Map<unknown, JsonSchema>([[String, { type: 'string' }], [Number, { type: 'number' }], [Boolean, { type: 'boolean' }]]);
/** Design types that say nothing about the class inside (TypeScript erases generics, interfaces and unions). */
const OPAQUE_TYPES = new Map<unknown, string>([
  [Array, 'an array'], [Map, 'a Map'], [Set, 'a Set'], [Promise, 'a Promise'], [Object, 'Object (an interface, union or any)'],
]);

/**
 * The JSON Schema of a class-validator DTO, complete and self-contained: nested DTOs (`@ValidateNested()` with
 * class-transformer's `@Type(() => X)`, also `{ each: true }` arrays and maps) are part of it.
 *
 * Canonical form: a nested DTO is written out in place, wherever it is used, exactly as a hand-written schema would
 * nest it, so the stored schema does not depend on class names (renaming a nested class registers nothing new) and
 * the compatibility checker reports changes at their full path (`$.address.zip`, `$.items[].qty`). Only a DTO that
 * refers back to itself, directly or through others, cannot be written out: each such class is kept once under the
 * root's `$defs` (keyed by class name, `Name_2` for a second class of the same name) and referred to as
 * `{ "$ref": "#/$defs/Name" }` wherever it is used; a recursive root is also written out in place. Ajv and the
 * compatibility checker both resolve these local references.
 *
 * Uses class-validator-jsonschema's own conversion per class (`targetConstructorToSchema` with
 * `classTransformerMetadataStorage`, so `@Type`, `@Expose({ name })` and `@Exclude` count), with a converter for
 * `@ValidateNested` that knows classes, not only their names: two nested classes of the same name stay apart.
 * @throws TypeError when a `@ValidateNested()` property's class cannot be told (an array, a Map or an interface
 *   without `@Type(() => X)`).
 * @throws OptionalDependencyMissingError when class-validator-jsonschema is not installed.
 */
export function dtoToJsonSchema(root: Function): JsonSchema {
  const targetConstructorToSchema = loadDtoConverter();
  const classes: Function[] = [];
  const ids = new Map<Function, number>();
  const idOf = (cls: Function): number => {
    let id = ids.get(cls);
    if (id === undefined) {
      id = classes.length;
      ids.set(cls, id);
      classes.push(cls);
    }
    return id;
  };
  const options: Partial<ConversionOptions> = {
    classTransformerMetadataStorage: defaultMetadataStorage,
    refPointerPrefix: UNVALIDATED_REF,
    additionalConverters: { [ValidationTypes.NESTED_VALIDATION]: nestedConverter(idOf) },
  };
  idOf(root);
  // Converting a class can discover more classes (idOf appends them), so the list grows while it is walked.
  const converted: JsonSchema[] = [];
  for (let i = 0; i < classes.length; i++) converted.push(targetConstructorToSchema(classes[i], options) as JsonSchema);

  const edges = converted.map((schema) => nestedIds(schema));
  const defNames = new Map<number, string>();
  const used = new Set<string>();
  converted.forEach((_, i) => {
    if (!reaches(edges, i, i)) return;
    const base = classes[i].name || 'Dto';
    let name = base;
    for (let n = 2; used.has(name); n++) name = `${base}_${n}`;
    used.add(name);
    defNames.set(i, name);
  });

  const expanded = new Map<number, JsonSchema>();
  const expandClass = (i: number): JsonSchema => {
    let schema = expanded.get(i);
    if (!schema) {
      // Terminates: a class that can reach itself is referred to by name below, never expanded inside itself.
      schema = expand(converted[i]) as JsonSchema;
      expanded.set(i, schema);
    }
    return structuredClone(schema);
  };
  const expand = (value: unknown): unknown => {
    if (Array.isArray(value)) return value.map(expand);
    if (!isJsonSchemaObject(value)) return value;
    const { $ref, ...rest } = value;
    const siblings: Record<string, unknown> = Object.fromEntries(Object.entries(rest).map(([k, v]) => [k, expand(v)]));
    if (typeof $ref !== 'string') return $ref === undefined ? siblings : { ...siblings, $ref };
    if ($ref.startsWith(UNVALIDATED_REF)) return siblings;
    if (!$ref.startsWith(NESTED_REF)) return { ...siblings, $ref };
    const i = Number($ref.slice(NESTED_REF.length));
    const kept = withoutImplied(siblings, converted[i]);
    const name = defNames.get(i);
    // What the property itself says (a description, say) goes over what its class says.
    return name === undefined ? { ...expandClass(i), ...kept } : { ...kept, $ref: `${DEFS_REF}${name}` };
  };

  const schema = expandClass(0);
  if (defNames.size === 0) return schema;
  const $defs: Record<string, JsonSchema> = {};
  for (const [i, name] of defNames) $defs[name] = expandClass(i);
  return { ...schema, $defs };
}

function nestedConverter(idOf: (cls: Function) => number): Converter {
  const convert = (meta: PropertyMetadata): JsonSchema | undefined => {
    const owner = meta.target;
    // Validation registered by schema name (not by class) has no class to look into.
    if (typeof owner !== 'function') return undefined;
    // class-validator-jsonschema hands over the wire name of an `@Expose({ name })` property; metadata has the class's.
    const property = defaultMetadataStorage.findExposeMetadataByCustomName(owner, meta.propertyName)?.propertyName ?? meta.propertyName;
    const typeMeta = defaultMetadataStorage.findTypeMetadata(owner, property);
    const child: unknown = typeMeta
      ? typeMeta.typeFunction({ newObject: {}, object: {}, property })
      : Reflect.getMetadata('design:type', owner.prototype as object, property);
    const primitive = PRIMITIVES.get(child);
    if (primitive) return primitive;
    if (typeof child !== 'function' || OPAQUE_TYPES.has(child)) {
      const what = OPAQUE_TYPES.get(child) ?? 'unknown';
      throw new TypeError(
        `${owner.name || 'a DTO'}.${property} has @ValidateNested() but its class cannot be told (the property's type is ${what}); ` +
          `add @Type(() => TheNestedDto) from class-transformer to it`,
      );
    }
    return { $ref: `${NESTED_REF}${idOf(child)}` };
  };
  return convert as unknown as Converter;
}

/** Ids of the nested DTOs a converted class refers to. */
function nestedIds(value: unknown, found = new Set<number>()): Set<number> {
  if (Array.isArray(value)) {
    for (const v of value) nestedIds(v, found);
  } else if (isJsonSchemaObject(value)) {
    for (const [key, v] of Object.entries(value)) {
      if (key === '$ref' && typeof v === 'string' && v.startsWith(NESTED_REF)) found.add(Number(v.slice(NESTED_REF.length)));
      else nestedIds(v, found);
    }
  }
  return found;
}

function reaches(edges: readonly Set<number>[], from: number, to: number): boolean {
  const seen = new Set<number>();
  const stack = [...edges[from]];
  while (stack.length > 0) {
    const next = stack.pop()!;
    if (next === to) return true;
    if (seen.has(next)) continue;
    seen.add(next);
    stack.push(...edges[next]);
  }
  return false;
}

/**
 * Drops what a nested DTO's own schema already says: `@IsObject()`'s `type: 'object'` and `@IsDefined()`'s
 * `not: { type: 'null' }`. Left next to a `$ref`, they would be sibling keywords the compatibility checker
 * cannot compare; next to an inlined object they only repeat it.
 */
function withoutImplied(siblings: Record<string, unknown>, target: JsonSchema): Record<string, unknown> {
  if (target.type !== 'object') return siblings;
  const { type, not, ...rest } = siblings;
  return {
    ...rest,
    ...(type === undefined || type === 'object' ? {} : { type }),
    ...(not === undefined || jsonEqual(not, { type: 'null' }) ? {} : { not }),
  };
}
