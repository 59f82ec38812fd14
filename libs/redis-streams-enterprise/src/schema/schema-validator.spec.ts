import { z } from 'zod';
import type { JsonSchema } from './json-schema.js';
import { toJsonSchema } from './schema-source.js';
import { SchemaValidator } from './schema-validator.js';

describe('SchemaValidator', () => {
  describe('issue paths name the property a keyword is about', () => {
    const validate = (schema: JsonSchema, data: unknown) => new SchemaValidator().validate('t@1', schema, data);

    it('additionalProperties: false reports each forbidden property at its own path', () => {
      const schema = { type: 'object', properties: { a: { type: 'string' } }, additionalProperties: false };
      expect(validate(schema, { a: 'x', extra: 1, other: 2 })).toEqual([
        { path: '$.extra', message: 'is not allowed (additionalProperties: false)' },
        { path: '$.other', message: 'is not allowed (additionalProperties: false)' },
      ]);
      // Nested, and a name that needs quoting.
      const nested = { type: 'object', properties: { inner: schema } };
      expect(validate(nested, { inner: { a: 'x', 'odd-name': 1 } })).toEqual([
        { path: '$.inner["odd-name"]', message: 'is not allowed (additionalProperties: false)' },
      ]);
    });

    it('required, dependentRequired and dependencies name the missing property', () => {
      expect(validate({ type: 'object', required: ['missingField'] }, {})).toEqual([{ path: '$.missingField', message: 'is required' }]);
      const schema = { $schema: 'https://json-schema.org/draft/2020-12/schema', type: 'object', dependentRequired: { card: ['billing'] } };
      expect(validate(schema, { card: '4111' })).toEqual([{ path: '$.billing', message: 'is required when "card" is present' }]);
      expect(validate({ type: 'object', dependencies: { card: ['billing'] } }, { card: '4111' })).toEqual([
        { path: '$.billing', message: 'is required when "card" is present' },
      ]);
    });

    it('unevaluatedProperties: false reports each unevaluated property at its own path', () => {
      const schema = {
        $schema: 'https://json-schema.org/draft/2020-12/schema',
        type: 'object',
        allOf: [{ properties: { a: { type: 'string' } } }],
        unevaluatedProperties: false,
      };
      expect(validate(schema, { a: 'x', stray: true })).toEqual([{ path: '$.stray', message: 'is not allowed (unevaluatedProperties: false)' }]);
    });

    it('propertyNames reports the offending name once, at its path, with the rule it broke', () => {
      const schema = { type: 'object', propertyNames: { pattern: '^[a-z]+$' }, additionalProperties: { type: 'number' } };
      expect(validate(schema, { ok: 1, Bad: 2 })).toEqual([{ path: '$.Bad', message: 'is not a valid property name: must match pattern "^[a-z]+$"' }]);
    });
  });

  describe('each schema is compiled by the Ajv of its JSON Schema draft', () => {
    it('a zod tuple (prefixItems + items: false, draft 2020-12) accepts valid values and refuses invalid ones with a path', () => {
      const schema = toJsonSchema(z.object({ point: z.tuple([z.string(), z.number()]) }));
      const validator = new SchemaValidator();
      expect(validator.validate('p@1', schema, { point: ['x', 1] })).toEqual([]);
      expect(validator.validate('p@1', schema, { point: ['x', 'y'] })).toEqual([{ path: '$.point[1]', message: 'must be number' }]);
      expect(validator.validate('p@1', schema, { point: ['x', 1, 2] }).map((i) => i.path)).toContain('$.point');
    });

    it('a 2020-12 schema stored without $schema (registered before it was kept) is recognised by its keywords', () => {
      const schema = { type: 'object', properties: { point: { type: 'array', prefixItems: [{ type: 'string' }, { type: 'number' }], items: false } } };
      expect(new SchemaValidator().validate('p@1', schema, { point: ['x', 1] })).toEqual([]);
    });

    it('a draft-07 tuple (items as an array) still validates as draft-07', () => {
      const schema = { $schema: 'http://json-schema.org/draft-07/schema#', type: 'array', items: [{ type: 'string' }, { type: 'number' }], additionalItems: false };
      const validator = new SchemaValidator();
      expect(validator.validate('d@1', schema, ['x', 1])).toEqual([]);
      expect(validator.validate('d@1', schema, ['x', 'y'])).toEqual([{ path: '$[1]', message: 'must be number' }]);
      expect(new SchemaValidator().validate('n@1', { type: 'array', items: [{ type: 'string' }] }, ['x', 2])).toEqual([]);
    });

    it('formats apply with both drafts', () => {
      const validator = new SchemaValidator();
      const draft07 = { type: 'object', properties: { at: { type: 'string', format: 'date-time' } } };
      const draft2020 = { ...draft07, $schema: 'https://json-schema.org/draft/2020-12/schema' };
      expect(validator.validate('f@1', draft07, { at: 'yesterday' })).toEqual([{ path: '$.at', message: 'must match format "date-time"' }]);
      expect(validator.validate('f@2', draft2020, { at: 'yesterday' })).toEqual([{ path: '$.at', message: 'must match format "date-time"' }]);
    });
  });
});
