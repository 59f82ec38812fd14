import 'reflect-metadata';
import { Type } from 'class-transformer';
import { IsInt, IsOptional, IsString, Min, ValidateNested } from 'class-validator';
import { canRead, checkCompatibility, COMPATIBILITY_RULES } from './compatibility.js';
import type { BreakingChange, CompatibilityMode, CompatibilityOptions } from './compatibility.js';
import type { JsonSchema } from './json-schema.js';
import { toJsonSchema } from './schema-source.js';

const object = (properties: Record<string, JsonSchema | boolean>, required: string[] = [], extra: Partial<JsonSchema> = {}): JsonSchema =>
  ({ type: 'object', properties, required, ...extra });
const closed = (properties: Record<string, JsonSchema | boolean>, required: string[] = []): JsonSchema =>
  object(properties, required, { additionalProperties: false });
const ruleIds = (changes: readonly BreakingChange[]): string[] => changes.map((c) => c.rule);

/** Breaking-change rules of `next` against `previous` in backward and in forward mode. */
function bothWays(previous: JsonSchema, next: JsonSchema, options: CompatibilityOptions = {}): { backward: string[]; forward: string[] } {
  const history = [{ version: '1', schema: previous }];
  return {
    backward: ruleIds(checkCompatibility(history, next, 'backward', options).breakingChanges),
    forward: ruleIds(checkCompatibility(history, next, 'forward', options).breakingChanges),
  };
}

const ALL_MODES: CompatibilityMode[] = ['none', 'backward', 'forward', 'full', 'backward_transitive', 'forward_transitive', 'full_transitive'];

describe('checkCompatibility', () => {
  it('finds identical schemas compatible in every mode', () => {
    const schema = object({ id: { type: 'string', format: 'uuid' }, tags: { type: 'array', items: { type: 'string' } } }, ['id'], { allOf: [{ minProperties: 1 }] });
    for (const mode of ALL_MODES) {
      expect(checkCompatibility([{ version: '1', schema }, { version: '2', schema: structuredClone(schema) }], structuredClone(schema), mode))
        .toEqual({ compatible: true, breakingChanges: [] });
    }
  });

  it('finds anything compatible in mode none, and a first version compatible in every mode', () => {
    expect(checkCompatibility([{ version: '1', schema: { type: 'string' } }], { type: 'number' }, 'none').compatible).toBe(true);
    for (const mode of ALL_MODES) expect(checkCompatibility([], { type: 'number' }, mode).compatible).toBe(true);
  });

  it('checks backward against the latest version only, forward the other way, full both', () => {
    const v1 = object({ a: { type: 'string' } }, ['a']);
    const v2 = object({ a: { type: 'string' }, b: { type: 'integer' } }, ['a', 'b']);
    const result = checkCompatibility([{ version: '1', schema: v1 }], v2, 'full');
    expect(result.compatible).toBe(false);
    expect(result.breakingChanges).toEqual([
      expect.objectContaining({ path: '$.b', rule: 'field-added-required-without-default', againstVersion: '1' }),
    ]);
    expect(result.breakingChanges[0].message).toMatch(/^Backward, against version 1 .*\$\.b.*give "b" a default or make it optional/);
    expect(checkCompatibility([{ version: '1', schema: v1 }], v2, 'forward').compatible).toBe(true);
  });

  describe('transitive modes', () => {
    // v2 adds b with a default, v3 drops the default: each step reads its predecessor, v3 cannot read v1.
    const v1 = closed({ a: { type: 'string' } }, ['a']);
    const v2 = closed({ a: { type: 'string' }, b: { type: 'string', default: 'x' } }, ['a', 'b']);
    const v3 = closed({ a: { type: 'string' }, b: { type: 'string' } }, ['a', 'b']);

    it('backward_transitive catches a break with an older version that backward misses', () => {
      const history = [{ version: '1', schema: v1 }, { version: '2', schema: v2 }];
      expect(checkCompatibility([{ version: '1', schema: v1 }], v2, 'backward').compatible).toBe(true);
      expect(checkCompatibility(history, v3, 'backward').compatible).toBe(true);
      const transitive = checkCompatibility(history, v3, 'backward_transitive');
      expect(transitive.breakingChanges).toEqual([
        expect.objectContaining({ path: '$.b', rule: 'field-added-required-without-default', againstVersion: '1' }),
      ]);
      expect(checkCompatibility(history, v3, 'full').compatible).toBe(true);
      expect(checkCompatibility(history, v3, 'full_transitive').compatible).toBe(false);
    });

    it('forward_transitive catches a break with an older version that forward misses', () => {
      // The same chain reversed: u3 writes no b, u2 reads that (default), u1 does not.
      const history = [{ version: '1', schema: v3 }, { version: '2', schema: v2 }];
      expect(checkCompatibility([{ version: '1', schema: v3 }], v2, 'forward').compatible).toBe(true);
      expect(checkCompatibility(history, v1, 'forward').compatible).toBe(true);
      expect(checkCompatibility(history, v1, 'forward_transitive').breakingChanges).toEqual([
        expect.objectContaining({ path: '$.b', rule: 'field-removed-still-required', againstVersion: '1' }),
      ]);
      expect(checkCompatibility(history, v1, 'full_transitive').compatible).toBe(false);
    });
  });
});

describe('canRead rules, each breaking one direction', () => {
  it('field-added-required-without-default: breaks backward only; a default or optional keeps it compatible', () => {
    const v1 = object({ a: { type: 'string' } }, ['a']);
    expect(bothWays(v1, object({ a: { type: 'string' }, b: { type: 'string' } }, ['a', 'b']))).toEqual({ backward: ['field-added-required-without-default'], forward: [] });
    expect(bothWays(v1, object({ a: { type: 'string' } }, ['a', 'b']))).toEqual({ backward: ['field-added-required-without-default'], forward: [] });
    expect(bothWays(closed({ a: { type: 'string' } }), closed({ a: { type: 'string' }, b: { type: 'string', default: '' } }, ['b'])).backward).toEqual([]);
    // Making an optional property required is the same situation.
    const optional = object({ a: { type: 'string' } });
    expect(bothWays(optional, object({ a: { type: 'string' } }, ['a']))).toEqual({ backward: ['field-added-required-without-default'], forward: [] });
  });

  it('field-removed-still-required: breaks forward only', () => {
    const v1 = closed({ a: { type: 'string' }, b: { type: 'string' } }, ['a', 'b']);
    const openV1 = object({ a: { type: 'string' }, b: { type: 'string' } }, ['a', 'b']);
    expect(bothWays(openV1, object({ a: { type: 'string' } }, ['a']))).toEqual({ backward: [], forward: ['field-removed-still-required'] });
    expect(bothWays(v1, closed({ a: { type: 'string' }, b: { type: 'string' } }, ['a']))).toEqual({ backward: [], forward: ['field-removed-still-required'] });
    // Removing it from a closed schema also breaks backward: old data still carries b.
    expect(bothWays(v1, closed({ a: { type: 'string' } }, ['a']))).toEqual({ backward: ['additional-properties-closed'], forward: ['field-removed-still-required'] });
  });

  it('adding or removing an optional property of an open schema is compatible both ways by default', () => {
    const open = object({ a: { type: 'string' } });
    const withB = object({ a: { type: 'string' }, b: { type: 'string', default: '' } });
    expect(bothWays(open, withB)).toEqual({ backward: [], forward: [] });
    expect(bothWays(withB, open)).toEqual({ backward: [], forward: [] });
  });

  it('property-added-to-open-model / property-removed-from-open-model (openContentModel strict): an open writer may already use the name', () => {
    const strict = { openContentModel: 'strict' } as const;
    const open = object({ a: { type: 'string' } });
    const withB = object({ a: { type: 'string' }, b: { type: 'string' } });
    expect(bothWays(open, withB, strict)).toEqual({ backward: ['property-added-to-open-model'], forward: [] });
    expect(bothWays(withB, open, strict)).toEqual({ backward: [], forward: ['property-removed-from-open-model'] });
    // A property schema that accepts anything, or a closed old schema, cannot conflict.
    expect(bothWays(open, object({ a: { type: 'string' }, b: { description: 'free-form' } }), strict).backward).toEqual([]);
    expect(bothWays(closed({ a: { type: 'string' } }), object({ a: { type: 'string' }, b: { type: 'string' } }), strict).backward).toEqual([]);
    // A required property missing from the writer is reported once, by the required rule.
    expect(bothWays(open, object({ a: { type: 'string' }, b: { type: 'string' } }, ['b']), strict).backward).toEqual(['field-added-required-without-default']);
  });

  it('type-changed: number -> string breaks both ways', () => {
    expect(bothWays({ type: 'number' }, { type: 'string' })).toEqual({ backward: ['type-changed'], forward: ['type-changed'] });
  });

  it('type-changed: integer -> number is a widening (breaks forward), number -> integer a narrowing (breaks backward)', () => {
    expect(bothWays({ type: 'integer' }, { type: 'number' })).toEqual({ backward: [], forward: ['type-changed'] });
    expect(bothWays({ type: 'number' }, { type: 'integer' })).toEqual({ backward: ['type-changed'], forward: [] });
    expect(bothWays({ type: 'string' }, { type: ['string', 'number'] })).toEqual({ backward: [], forward: ['type-changed'] });
    expect(canRead({ type: 'string' }, {}).find((c) => c.rule === 'type-changed')?.message).toMatch(/writer may produce any type but the reader accepts string/);
  });

  it('enum-narrowed: removing a value breaks backward, adding one breaks forward; const counts as a one-value enum', () => {
    const abc: JsonSchema = { type: 'string', enum: ['a', 'b', 'c'] };
    const ab: JsonSchema = { type: 'string', enum: ['a', 'b'] };
    expect(bothWays(abc, ab)).toEqual({ backward: ['enum-narrowed'], forward: [] });
    expect(bothWays(ab, abc)).toEqual({ backward: [], forward: ['enum-narrowed'] });
    expect(bothWays({ const: 'a' }, ab)).toEqual({ backward: [], forward: ['enum-narrowed'] });
    expect(bothWays({ type: 'string' }, ab)).toEqual({ backward: ['enum-narrowed'], forward: [] });
    expect(canRead(ab, abc)[0].message).toContain('"c"');
    expect(canRead({ enum: ['b', 'a'] }, ab)).toEqual([]);
  });

  it('nullable-removed: dropping null breaks backward, allowing it breaks forward, in every nullable spelling', () => {
    const spellings: JsonSchema[] = [
      { type: ['string', 'null'] },
      { anyOf: [{ type: 'string' }, { type: 'null' }] },
      { oneOf: [{ type: 'null' }, { type: 'string' }] },
      { type: 'string', nullable: true },
    ];
    for (const nullable of spellings) {
      expect(bothWays(nullable, { type: 'string' })).toEqual({ backward: ['nullable-removed'], forward: [] });
      expect(bothWays({ type: 'string' }, nullable)).toEqual({ backward: [], forward: ['nullable-removed'] });
      for (const other of spellings) expect(canRead(nullable, other)).toEqual([]);
    }
  });

  it('additional-properties-closed: closing breaks backward; a property added to a closed schema breaks forward', () => {
    const open = object({ a: { type: 'string' } });
    const shut = closed({ a: { type: 'string' } });
    expect(bothWays(open, shut)).toEqual({ backward: ['additional-properties-closed'], forward: [] });
    const grown = closed({ a: { type: 'string' }, b: { type: 'string' } });
    expect(bothWays(shut, grown)).toEqual({ backward: [], forward: ['additional-properties-closed'] });
    expect(canRead(shut, grown)[0].message).toMatch(/^\$: the reader sets additionalProperties: false but the writer may produce properties "b"/);
    // additionalProperties as a schema: undeclared written properties must fit it.
    const numbersOnly = object({}, [], { additionalProperties: { type: 'number' } });
    expect(ruleIds(canRead(numbersOnly, closed({ n: { type: 'integer' } })))).toEqual([]);
    expect(canRead(numbersOnly, closed({ s: { type: 'string' } }))).toEqual([expect.objectContaining({ path: '$.s', rule: 'type-changed' })]);
  });

  it('constraint-tightened: a stricter reader breaks backward, a looser one forward', () => {
    const cases: [JsonSchema, JsonSchema][] = [
      [{ type: 'string', minLength: 1 }, { type: 'string', minLength: 5 }],
      [{ type: 'string', maxLength: 50 }, { type: 'string', maxLength: 10 }],
      [{ type: 'string' }, { type: 'string', format: 'email' }],
      [{ type: 'string' }, { type: 'string', pattern: '^[a-c]+$' }],
      [{ type: 'number', minimum: 0 }, { type: 'number', minimum: 1 }],
      [{ type: 'number', maximum: 10 }, { type: 'number', exclusiveMaximum: 10 }],
      [{ type: 'number' }, { type: 'number', multipleOf: 2 }],
      [{ type: 'array', items: { type: 'string' } }, { type: 'array', items: { type: 'string' }, minItems: 1, uniqueItems: true }],
    ];
    for (const [loose, strict] of cases) {
      const result = bothWays(loose, strict);
      expect({ strict, forward: result.forward }).toEqual({ strict, forward: [] });
      expect(result.backward.length).toBeGreaterThan(0);
      expect(new Set(result.backward)).toEqual(new Set(['constraint-tightened']));
      expect(result.forward).toEqual([]);
      expect(bothWays(strict, loose).forward.length).toBeGreaterThan(0);
    }
  });

  it('constraint-tightened: regular expressions are not compared, so any pattern change breaks both ways', () => {
    expect(bothWays({ type: 'string', pattern: '^[a-z]+$' }, { type: 'string', pattern: '^[a-c]+$' }))
      .toEqual({ backward: ['constraint-tightened'], forward: ['constraint-tightened'] });
  });

  it('constraint-tightened: equivalent bounds and enum values that pass the reader stay compatible', () => {
    expect(canRead({ type: 'integer', minimum: 1 }, { type: 'integer', exclusiveMinimum: 0, minimum: 1 })).toEqual([]);
    expect(canRead({ type: 'number', exclusiveMinimum: 0 }, { type: 'number', minimum: 0 })).toEqual([
      expect.objectContaining({ rule: 'constraint-tightened', message: expect.stringContaining("reader's lower bound (exclusiveMinimum 0) is stricter than the writer's (minimum 0)") }),
    ]);
    expect(canRead({ type: 'string', minLength: 2, pattern: '^[a-z]+$' }, { type: 'string', enum: ['ab', 'cd'] })).toEqual([]);
    expect(canRead({ type: 'number', multipleOf: 0.5 }, { type: 'number', multipleOf: 1.5 })).toEqual([]);
    expect(canRead({ type: 'integer', multipleOf: 1 }, { type: 'integer' })).toEqual([]);
    // Constraints of a kind the writer never produces do not apply.
    expect(canRead({ type: ['string', 'integer'], minimum: 1, maxItems: 2 }, { type: 'string' })).toEqual([]);
    expect(ruleIds(canRead({ type: ['string', 'integer'], minimum: 1 }, { type: ['string', 'integer'] }))).toEqual(['constraint-tightened']);
  });

  it('items: changes inside array items are reported at path[] with their own rule', () => {
    const strings: JsonSchema = { type: 'array', items: { type: 'string' } };
    expect(bothWays(strings, { type: 'array', items: { type: 'number' } })).toEqual({ backward: ['type-changed'], forward: ['type-changed'] });
    expect(canRead({ type: 'array', items: { type: 'number' } }, strings)[0].path).toBe('$[]');
    expect(ruleIds(canRead({ type: 'array', items: false }, strings))).toEqual(['items-incompatible']);
    expect(ruleIds(canRead({ type: 'array', items: [{ type: 'string' }] }, { type: 'array', items: [{ type: 'number' }] }))).toEqual(['items-incompatible']);
  });

  it('unsupported-change: a differing keyword it does not model is reported, not assumed compatible', () => {
    const changes = canRead({ type: 'string', not: { const: 'x' } }, { type: 'string' });
    expect(changes).toEqual([expect.objectContaining({ path: '$', rule: 'unsupported-change' })]);
    expect(changes[0].message).toContain('keyword "not"');
    expect(canRead({ type: 'string', description: 'new words', title: 'T', examples: ['e'] }, { type: 'string' })).toEqual([]);
  });
});

describe('nested schemas', () => {
  const address = (zip: JsonSchema): JsonSchema => object({ street: { type: 'string' }, zip }, ['street', 'zip']);

  it('names the nested path in the change and its message', () => {
    const v1 = object({ address: address({ type: 'string' }) }, ['address']);
    const v2 = object({ address: address({ type: 'integer' }) }, ['address']);
    const [first] = checkCompatibility([{ version: '1', schema: v1 }], v2, 'backward').breakingChanges;
    expect(first).toMatchObject({ path: '$.address.zip', rule: 'type-changed', againstVersion: '1' });
    expect(first.message).toContain('$.address.zip: the writer may produce string but the reader accepts integer');
  });

  it('recurses into arrays of objects and quotes awkward keys', () => {
    const order = (sku: JsonSchema): JsonSchema => object({ lines: { type: 'array', items: closed({ sku, 'unit-price': { type: 'number' } }, ['sku']) } });
    const changes = canRead(order({ type: 'string', maxLength: 8 }), order({ type: 'string' }));
    expect(changes).toEqual([expect.objectContaining({ path: '$.lines[].sku', rule: 'constraint-tightened' })]);
    const price = canRead(
      object({ lines: { type: 'array', items: object({ 'unit-price': { type: 'integer' } }) } }),
      object({ lines: { type: 'array', items: object({ 'unit-price': { type: 'number' } }) } }),
    );
    expect(price[0].path).toBe('$.lines[]["unit-price"]');
  });

  it('follows local $refs, including recursive ones', () => {
    const tree = (value: string): JsonSchema => ({
      $defs: { Node: object({ value: { type: value }, children: { type: 'array', items: { $ref: '#/$defs/Node' } } }, ['value']) },
      $ref: '#/$defs/Node',
    });
    expect(canRead(tree('number'), tree('integer'))).toEqual([]);
    expect(canRead(tree('integer'), tree('number'))).toEqual([expect.objectContaining({ path: '$.value', rule: 'type-changed' })]);
    expect(ruleIds(canRead({ $ref: 'https://example.com/x.json' }, { type: 'string' }))).toEqual(['unsupported-change']);
  });

  it('reads unions branch by branch and only trusts oneOf branches that cannot overlap', () => {
    const a = closed({ kind: { const: 'a' }, n: { type: 'number' } }, ['kind']);
    const b = closed({ kind: { const: 'b' }, s: { type: 'string' } }, ['kind']);
    const c = closed({ kind: { const: 'c' } }, ['kind']);
    expect(bothWays({ oneOf: [a, b] }, { oneOf: [a, b, c] })).toEqual({ backward: [], forward: ['enum-narrowed'] });
    expect(bothWays({ anyOf: [{ type: 'string' }, { type: 'number' }] }, { type: 'string' })).toEqual({ backward: ['type-changed'], forward: [] });
    expect(ruleIds(canRead({ oneOf: [{ type: 'number' }, { type: 'integer' }] }, { type: 'integer' }))).toEqual(['unsupported-change']);
  });
});

describe('DTO-style open schemas (class-validator-jsonschema, hand-written)', () => {
  const v1 = object({ orderId: { type: 'string' }, quantity: { type: 'integer', minimum: 1 } }, ['orderId', 'quantity']);

  it('accepts an optional field with a default and a looser constraint backward', () => {
    const v2 = object({ orderId: { type: 'string' }, quantity: { type: 'integer' }, note: { type: 'string', default: '' } }, ['orderId', 'quantity']);
    expect(checkCompatibility([{ version: '1.0.0', schema: v1 }], v2, 'backward')).toEqual({ compatible: true, breakingChanges: [] });
    expect(ruleIds(checkCompatibility([{ version: '1.0.0', schema: v1 }], v2, 'forward').breakingChanges)).toEqual(['constraint-tightened']);
  });

  it('compares a property the writer requires without declaring it with the writer\'s additionalProperties', () => {
    expect(canRead(object({ c: { type: 'string' } }), object({}, ['c'], { additionalProperties: { type: 'number' } })))
      .toEqual([expect.objectContaining({ path: '$.c', rule: 'type-changed' })]);
  });

  it('reports an unresolvable $ref (nested DTO without its definitions) instead of trusting it', () => {
    const withAddress = (extra: Record<string, JsonSchema>): JsonSchema => object({ address: { $ref: '#/definitions/Address' }, ...extra });
    expect(canRead(withAddress({}), withAddress({}))).toEqual([]);
    const [unresolved] = canRead(withAddress({ note: { type: 'string' } }), withAddress({}));
    expect(unresolved).toMatchObject({ path: '$.address', rule: 'unsupported-change' });
    expect(unresolved.message).toContain('validationMetadatasToSchemas()');
    const embedded = (extra: Record<string, JsonSchema>): JsonSchema => ({ ...withAddress(extra), definitions: { Address: object({ zip: { type: 'string' } }) } });
    expect(canRead(embedded({ note: { type: 'string' } }), embedded({}))).toEqual([]);
  });
});

describe('nested DTOs (class-validator with @ValidateNested and @Type)', () => {
  /** A decorator that does nothing: a property without any decorator is not part of the schema. */
  const absent: PropertyDecorator = () => undefined;

  /** One version of an order DTO: the nested address and the array item vary per version. */
  function orderVersion(options: { zipRequired?: boolean; country?: 'required' | 'optional'; qty?: 'integer' | 'string' } = {}): JsonSchema {
    const { zipRequired = true, country, qty = 'integer' } = options;
    class AddressDto {
      @IsString() street!: string;
      @IsString() @(zipRequired ? absent : IsOptional()) zip?: string;
      @(country ? IsString() : absent) @(country === 'optional' ? IsOptional() : absent) country?: string;
    }
    class ItemDto {
      @IsString() sku!: string;
      @(qty === 'integer' ? IsInt() : IsString()) @(qty === 'integer' ? Min(1) : absent) qty!: unknown;
    }
    class OrderDto {
      @IsString() orderId!: string;
      @ValidateNested() @Type(() => AddressDto) address!: AddressDto;
      @ValidateNested({ each: true }) @Type(() => ItemDto) items!: ItemDto[];
    }
    return toJsonSchema(OrderDto);
  }

  it('sees a removed required nested field: breaks forward only, at its full path', () => {
    expect(bothWays(orderVersion(), orderVersion({ zipRequired: false }))).toEqual({ backward: [], forward: ['field-removed-still-required'] });
    const [change] = checkCompatibility([{ version: '1', schema: orderVersion() }], orderVersion({ zipRequired: false }), 'forward').breakingChanges;
    expect(change).toMatchObject({ path: '$.address.zip', rule: 'field-removed-still-required' });
  });

  it('sees a required nested field added without default: breaks backward only; an optional one is compatible both ways', () => {
    const [change] = checkCompatibility([{ version: '1', schema: orderVersion() }], orderVersion({ country: 'required' }), 'full').breakingChanges;
    expect(change).toMatchObject({ path: '$.address.country', rule: 'field-added-required-without-default' });
    expect(bothWays(orderVersion(), orderVersion({ country: 'required' }))).toEqual({ backward: ['field-added-required-without-default'], forward: [] });
    expect(bothWays(orderVersion(), orderVersion({ country: 'optional' }))).toEqual({ backward: [], forward: [] });
  });

  it('sees a type change in an array item, both ways', () => {
    const result = checkCompatibility([{ version: '1', schema: orderVersion() }], orderVersion({ qty: 'string' }), 'full');
    expect(result.breakingChanges.map((c) => `${c.rule} ${c.path}`)).toEqual(['type-changed $.items[].qty', 'type-changed $.items[].qty']);
    expect(bothWays(orderVersion({ qty: 'string' }), orderVersion())).toEqual({ backward: ['type-changed'], forward: ['type-changed'] });
  });

  it('compares recursive DTOs through their $defs: unchanged is compatible in every mode, a change inside is found', () => {
    const category = (name: 'string' | 'integer', withNote = false): JsonSchema => {
      class CategoryDto {
        @(name === 'string' ? IsString() : IsInt()) name!: unknown;
        @IsOptional() @ValidateNested({ each: true }) @Type(() => CategoryDto) children?: CategoryDto[];
        @(withNote ? IsOptional() : absent) @(withNote ? IsString() : absent) note?: string;
      }
      class ProductDto {
        @IsString() sku!: string;
        @ValidateNested() @Type(() => CategoryDto) category!: CategoryDto;
      }
      return toJsonSchema(ProductDto);
    };
    for (const mode of ALL_MODES) {
      expect(checkCompatibility([{ version: '1', schema: category('string') }], category('string'), mode).compatible).toBe(true);
    }
    expect(bothWays(category('string'), category('string', true))).toEqual({ backward: [], forward: [] });
    expect(canRead(category('integer'), category('string')).map((c) => `${c.rule} ${c.path}`)).toEqual(['type-changed $.category.name']);
    // The recursion is followed once per pair of definitions: the change inside is reported where it is first met.
    expect(canRead(category('string'), category('integer')).map((c) => c.rule)).toEqual(['type-changed']);
  });

  it('compares a $ref with sibling keywords as the referenced schema plus the siblings, unless they constrain the same thing', () => {
    const defs = { Node: object({ id: { type: 'string' } }, ['id']) };
    const withRef = (sibling: Partial<JsonSchema>): JsonSchema => ({ ...object({ node: { $ref: '#/$defs/Node', ...sibling }, other: { type: 'string' } }), $defs: defs });
    const changed = (sibling: Partial<JsonSchema>): JsonSchema => ({ ...withRef(sibling), properties: { ...withRef(sibling).properties, other: { type: 'string', minLength: 1 } } });
    expect(canRead(withRef({ minProperties: 1, description: 'x' }), changed({ minProperties: 1 })).map((c) => c.path)).toEqual([]);
    expect(canRead(changed({ minProperties: 1 }), withRef({ minProperties: 1 })).map((c) => `${c.rule} ${c.path}`)).toEqual(['constraint-tightened $.other']);
    expect(canRead(withRef({ minProperties: 2 }), withRef({ minProperties: 1 })).map((c) => `${c.rule} ${c.path}`)).toEqual(['constraint-tightened $.node']);
    // A sibling that repeats the referenced schema adds nothing.
    expect(canRead(changed({ type: 'object' }), withRef({ type: 'object' })).map((c) => `${c.rule} ${c.path}`)).toEqual(['constraint-tightened $.other']);
    // additionalProperties next to a $ref whose target declares properties means something else merged: not compared.
    const [interacting] = canRead(changed({ additionalProperties: false }), withRef({ additionalProperties: false }));
    expect(interacting).toMatchObject({ path: '$.node', rule: 'unsupported-change' });
    expect(interacting.message).toContain('has sibling keywords that constrain what the referenced schema constrains');
  });

  it('finds a DTO and a hand-written schema of the same shape compatible', () => {
    const handWritten = object({
      orderId: { type: 'string' },
      address: object({ street: { type: 'string' }, zip: { type: 'string' } }, ['street', 'zip']),
      items: { type: 'array', items: object({ sku: { type: 'string' }, qty: { type: 'integer', minimum: 1 } }, ['sku', 'qty']) },
    }, ['orderId', 'address', 'items']);
    expect(bothWays(handWritten, orderVersion())).toEqual({ backward: [], forward: [] });
    expect(bothWays(orderVersion(), handWritten)).toEqual({ backward: [], forward: [] });
  });
});

describe('schemas as zod 4 emits them (z.toJSONSchema, output mode: objects are closed)', () => {
  const UUID_PATTERN = '^([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[1-8][0-9a-fA-F]{3}-[89abAB][0-9a-fA-F]{3}-[0-9a-fA-F]{12}|00000000-0000-0000-0000-000000000000|ffffffff-ffff-ffff-ffff-ffffffffffff)$';
  const id = { type: 'string', format: 'uuid', pattern: UUID_PATTERN };
  // z.object({ id: z.uuid(), amount: z.number().int().positive(), status: z.enum(['new', 'paid']), note: z.string().nullable() })
  const v1: JsonSchema = {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    type: 'object',
    properties: {
      id,
      amount: { type: 'integer', exclusiveMinimum: 0, maximum: 9007199254740991 },
      status: { type: 'string', enum: ['new', 'paid'] },
      note: { type: ['string', 'null'] },
    },
    required: ['id', 'amount', 'status', 'note'],
    additionalProperties: false,
  };

  it('accepts an added optional field backward; the closed output schema makes it break forward', () => {
    // v1.extend({ currency: z.string().optional() })
    const v2: JsonSchema = { ...v1, properties: { ...v1.properties, currency: { type: 'string' } } };
    expect(bothWays(v1, v2)).toEqual({ backward: [], forward: ['additional-properties-closed'] });
  });

  it('reports zod-level changes by rule and path', () => {
    // z.object({ id: z.uuid(), amount: z.number().positive(), status: z.enum(['new']), note: z.string() })
    const v2: JsonSchema = {
      ...v1,
      properties: { id, amount: { type: 'number', exclusiveMinimum: 0 }, status: { type: 'string', enum: ['new'] }, note: { type: 'string' } },
    };
    const { breakingChanges } = checkCompatibility([{ version: '1', schema: v1 }], v2, 'full');
    expect(breakingChanges.map((c) => `${c.rule} ${c.path}`).sort()).toEqual([
      'constraint-tightened $.amount', // forward: v1's reader keeps the safe-integer maximum of .int()
      'enum-narrowed $.status',
      'nullable-removed $.note',
      'type-changed $.amount',
    ]);
  });
});

describe('COMPATIBILITY_RULES', () => {
  it('lists every rule id once, each breaking at least one direction', () => {
    const ids = COMPATIBILITY_RULES.map((r) => r.rule);
    expect(new Set(ids).size).toBe(ids.length);
    for (const row of COMPATIBILITY_RULES) expect(row.breaksBackward || row.breaksForward).toBe(true);
  });
});
