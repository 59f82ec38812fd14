import { Ajv, type ValidateFunction } from 'ajv';
import addFormats from 'ajv-formats';
import type { SchemaIssue } from '../errors/schema-validation.error.js';
import type { JsonSchema } from './json-schema.js';

/**
 * Validates payloads against stored JSON Schemas with Ajv (compiled once per schema version and cached: versions are
 * immutable). Every process validates the same way, whatever form the schema was registered in.
 *
 * With `applyDefaults`, validation also fills in the schema's `default` for every missing property, in place (Ajv
 * `useDefaults`): how a message written with an older version gets the fields a handler's newer version added.
 */
export class SchemaValidator {
  private readonly ajv: Ajv;
  private readonly compiled = new Map<string, ValidateFunction>();

  constructor(options: { applyDefaults?: boolean } = {}) {
    this.ajv = new Ajv({ allErrors: true, strict: false, useDefaults: options.applyDefaults === true });
    (addFormats as unknown as (ajv: Ajv) => void)(this.ajv);
  }

  validate(key: string, schema: JsonSchema, data: unknown): SchemaIssue[] {
    let validate = this.compiled.get(key);
    if (!validate) {
      validate = this.ajv.compile(schema as object);
      this.compiled.set(key, validate);
    }
    if (validate(data)) return [];
    return (validate.errors ?? []).map((e) => ({
      path: issuePath(data, e.instancePath, e.keyword === 'required' ? String((e.params as { missingProperty?: string }).missingProperty) : undefined),
      message: e.keyword === 'required' ? 'is required' : (e.message ?? e.keyword),
    }));
  }

  /** Drops a compiled schema (its version was deleted and may be registered again with another schema). */
  forget(key: string): void {
    const validate = this.compiled.get(key);
    if (!validate) return;
    this.compiled.delete(key);
    this.ajv.removeSchema(validate.schema as object);
  }
}

/**
 * An Ajv instance path (JSON Pointer) as the JSON path users read: `/items/1/qty` is `$.items[1].qty`,
 * `/address/zip` is `$.address.zip`, an awkward key is quoted (`$["unit-price"]`). Walks the data, so a numeric key
 * of an object stays a key (`$.byId["7"]`) and only array positions become `[n]`.
 */
export function issuePath(data: unknown, instancePath: string, missingProperty?: string): string {
  const segments = instancePath === '' ? [] : instancePath.slice(1).split('/').map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
  if (missingProperty !== undefined) segments.push(missingProperty);
  let path = '$';
  let node: unknown = data;
  for (const segment of segments) {
    if (Array.isArray(node) && /^(0|[1-9][0-9]*)$/.test(segment)) path += `[${segment}]`;
    else path += /^[A-Za-z_$][A-Za-z0-9_$]*$/.test(segment) ? `.${segment}` : `[${JSON.stringify(segment)}]`;
    node = typeof node === 'object' && node !== null ? (node as Record<string, unknown>)[segment] : undefined;
  }
  return path;
}
