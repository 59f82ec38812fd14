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
      path: `$${e.instancePath.replace(/\//g, '.')}${e.keyword === 'required' ? `.${String((e.params as { missingProperty?: string }).missingProperty)}` : ''}`,
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
