import { Ajv, type ValidateFunction } from 'ajv';
import addFormats from 'ajv-formats';
import type { SchemaIssue } from '../errors/schema-validation.error.js';
import type { JsonSchema } from './json-schema.js';

/**
 * Validates payloads against stored JSON Schemas with Ajv (compiled once per schema version and cached: versions are
 * immutable). Every process validates the same way, whatever form the schema was registered in.
 */
export class SchemaValidator {
  private readonly ajv = new Ajv({ allErrors: true, strict: false });
  private readonly compiled = new Map<string, ValidateFunction>();

  constructor() {
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
}
