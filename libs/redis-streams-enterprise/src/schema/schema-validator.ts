import type { Ajv, ErrorObject, Options, ValidateFunction } from 'ajv';
import type { Ajv2020 } from 'ajv/dist/2020.js';
import type { SchemaIssue } from '../errors/schema-validation.error.js';
import { loadOptional, type OptionalFeature, type RequireFn } from '../runtime/optional-dependency.js';
import { jsonSchemaDraftOf, type JsonSchema, type JsonSchemaDraft } from './json-schema.js';

type AnyAjv = Ajv | Ajv2020;

/** What validation needs of the optional peers ajv and ajv-formats (types only above: nothing loads at import). */
export interface AjvPackages {
  readonly Ajv: new (options: Options) => Ajv;
  readonly Ajv2020: new (options: Options) => Ajv2020;
  readonly addFormats: (ajv: AnyAjv) => unknown;
}

/** The optional peers schema validation (`schema.enabled`) needs. */
export const SCHEMA_VALIDATION: OptionalFeature = { feature: 'schema validation', packages: ['ajv', 'ajv-formats'] };

/**
 * Loads ajv and ajv-formats. Called when a validator first compiles a schema, and by the SchemaManager when
 * `schema.enabled` is on, so that a missing package fails the application's start rather than its first message.
 * @throws OptionalDependencyMissingError when ajv or ajv-formats is not installed.
 */
export function loadAjvPackages(requireFn?: RequireFn): AjvPackages {
  const ajv = loadOptional<{ Ajv: AjvPackages['Ajv'] }>('ajv', SCHEMA_VALIDATION, requireFn);
  const ajv2020 = loadOptional<{ Ajv2020: AjvPackages['Ajv2020'] }>('ajv/dist/2020.js', SCHEMA_VALIDATION, requireFn);
  // CommonJS: the module is the plugin function itself (also under `default`).
  const formats = loadOptional<AjvPackages['addFormats'] & { default?: AjvPackages['addFormats'] }>('ajv-formats', SCHEMA_VALIDATION, requireFn);
  return { Ajv: ajv.Ajv, Ajv2020: ajv2020.Ajv2020, addFormats: formats.default ?? formats };
}

/**
 * Validates payloads against stored JSON Schemas with Ajv (compiled once per schema version and cached: versions are
 * immutable). Every process validates the same way, whatever form the schema was registered in.
 *
 * Each schema is compiled by the Ajv of its draft ({@link jsonSchemaDraftOf}): draft 2020-12 (zod's JSON Schema,
 * `prefixItems` tuples) by Ajv2020, the rest by Ajv's default draft-07 class. A draft-07 Ajv would read a zod tuple's
 * `items: false` as "no items at all" and refuse every value.
 *
 * With `applyDefaults`, validation also fills in the schema's `default` for every missing property, in place (Ajv
 * `useDefaults`): how a message written with an older version gets the fields a handler's newer version added.
 *
 * ajv and ajv-formats are optional peers, loaded when the first schema is compiled ({@link loadAjvPackages}).
 * @throws OptionalDependencyMissingError from `validate` when one of them is not installed.
 */
export class SchemaValidator {
  private readonly ajvs = new Map<JsonSchemaDraft, AnyAjv>();
  private packages?: AjvPackages;
  private readonly compiled = new Map<string, { validate: ValidateFunction; ajv: AnyAjv }>();

  constructor(private readonly options: { applyDefaults?: boolean } = {}) {}

  validate(key: string, schema: JsonSchema, data: unknown): SchemaIssue[] {
    let entry = this.compiled.get(key);
    if (!entry) {
      const ajv = this.ajvFor(jsonSchemaDraftOf(schema));
      entry = { validate: ajv.compile(schema as object), ajv };
      this.compiled.set(key, entry);
    }
    if (entry.validate(data)) return [];
    return toIssues(data, entry.validate.errors ?? []);
  }

  /** Drops a compiled schema (its version was deleted and may be registered again with another schema). */
  forget(key: string): void {
    const entry = this.compiled.get(key);
    if (!entry) return;
    this.compiled.delete(key);
    entry.ajv.removeSchema(entry.validate.schema as object);
  }

  /** One Ajv per draft, made on first use (most deployments only ever see one draft). */
  private ajvFor(draft: JsonSchemaDraft): AnyAjv {
    let ajv = this.ajvs.get(draft);
    if (!ajv) {
      const { Ajv: Draft07, Ajv2020: Draft2020, addFormats } = (this.packages ??= loadAjvPackages());
      const options: Options = { allErrors: true, strict: false, useDefaults: this.options.applyDefaults === true };
      ajv = draft === '2020-12' ? new Draft2020(options) : new Draft07(options);
      addFormats(ajv);
      this.ajvs.set(draft, ajv);
    }
    return ajv;
  }
}

/** What `propertyNames` itself reports; dropped when the rule the name broke is reported too (it says more). */
const INVALID_NAME = 'is not a valid property name';

/**
 * Ajv errors as issues users read. Keywords about a property of an object (a forbidden, missing or badly named one)
 * are reported by Ajv at the object; the issue names the property instead: `$.extra is not allowed`, not
 * `$ must NOT have additional properties` once per extra property.
 */
function toIssues(data: unknown, errors: readonly ErrorObject[]): SchemaIssue[] {
  const issues = errors.map((e) => toIssue(data, e));
  return issues.filter((issue) => issue.message !== INVALID_NAME || !issues.some((other) => other.path === issue.path && other.message.startsWith(`${INVALID_NAME}:`)));
}

function toIssue(data: unknown, e: ErrorObject): SchemaIssue {
  const params = e.params as Record<string, unknown>;
  const at = (property: unknown, message: string): SchemaIssue => ({ path: issuePath(data, e.instancePath, String(property)), message });
  // An error inside a `propertyNames` schema is about the name of one property (Ajv sets `propertyName` on it).
  if (e.propertyName !== undefined) return at(e.propertyName, `${INVALID_NAME}: ${e.message ?? e.keyword}`);
  switch (e.keyword) {
    case 'required':
      return at(params.missingProperty, 'is required');
    case 'dependentRequired':
    case 'dependencies':
      if (params.missingProperty !== undefined) return at(params.missingProperty, `is required when ${JSON.stringify(params.property)} is present`);
      break;
    case 'additionalProperties':
      if (params.additionalProperty !== undefined) return at(params.additionalProperty, 'is not allowed (additionalProperties: false)');
      break;
    case 'unevaluatedProperties':
      if (params.unevaluatedProperty !== undefined) return at(params.unevaluatedProperty, 'is not allowed (unevaluatedProperties: false)');
      break;
    case 'propertyNames':
      if (params.propertyName !== undefined) return at(params.propertyName, INVALID_NAME);
      break;
  }
  return { path: issuePath(data, e.instancePath), message: e.message ?? e.keyword };
}

/**
 * An Ajv instance path (JSON Pointer) as the JSON path users read: `/items/1/qty` is `$.items[1].qty`,
 * `/address/zip` is `$.address.zip`, an awkward key is quoted (`$["unit-price"]`). Walks the data, so a numeric key
 * of an object stays a key (`$.byId["7"]`) and only array positions become `[n]`. `property` is appended: the
 * property of the object at `instancePath` an error is about (a missing, forbidden or badly named one).
 */
export function issuePath(data: unknown, instancePath: string, property?: string): string {
  const segments = instancePath === '' ? [] : instancePath.slice(1).split('/').map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
  if (property !== undefined) segments.push(property);
  let path = '$';
  let node: unknown = data;
  for (const segment of segments) {
    if (Array.isArray(node) && /^(0|[1-9][0-9]*)$/.test(segment)) path += `[${segment}]`;
    else path += /^[A-Za-z_$][A-Za-z0-9_$]*$/.test(segment) ? `.${segment}` : `[${JSON.stringify(segment)}]`;
    node = typeof node === 'object' && node !== null ? (node as Record<string, unknown>)[segment] : undefined;
  }
  return path;
}
