import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import { Expose, Type } from 'class-transformer';
import {
  IsArray, IsDefined, IsInt, IsNumber, IsObject, IsOptional, IsString, Length, Min, Validate, ValidateNested, ValidatorConstraint,
  type ValidatorConstraintInterface,
} from 'class-validator';
import { SchemaRegistrationError } from '../errors/schema-registration.error.js';
import { SchemaValidationError } from '../errors/schema-validation.error.js';
import { dtoToJsonSchema } from './dto-schema.js';
import { InMemorySchemaRegistry } from './in-memory.schema-registry.js';
import type { JsonSchema } from './json-schema.js';
import { SchemaManager } from './schema.manager.js';
import { canonicalJson, toJsonSchema } from './schema-source.js';
import { issuePath, SchemaValidator } from './schema-validator.js';

/** No Redis in this spec: registrations are not audited (the audit trail would connect to the default URL). */
const NO_AUDIT = { audit: { enabled: false } };

class GeoDto {
  @IsNumber() lat!: number;
  @IsNumber() lng!: number;
}

class AddressDto {
  @IsString() street!: string;
  @IsString() @Length(4, 10) zip!: string;
  @IsOptional() @ValidateNested() @Type(() => GeoDto) geo?: GeoDto;
}

class ItemDto {
  @IsString() sku!: string;
  @IsInt() @Min(1) qty!: number;
}

class OrderDto {
  @IsString() orderId!: string;
  @IsDefined() @ValidateNested() @Type(() => AddressDto) address!: AddressDto;
  @IsArray() @ValidateNested({ each: true }) @Type(() => ItemDto) items!: ItemDto[];
  @IsOptional() @ValidateNested() @Type(() => AddressDto) billing?: AddressDto;
}

const GEO: JsonSchema = { type: 'object', properties: { lat: { type: 'number' }, lng: { type: 'number' } }, required: ['lat', 'lng'] };
const ADDRESS: JsonSchema = {
  type: 'object',
  properties: { street: { type: 'string' }, zip: { type: 'string', minLength: 4, maxLength: 10 }, geo: GEO },
  required: ['street', 'zip'],
};
const ITEM: JsonSchema = { type: 'object', properties: { sku: { type: 'string' }, qty: { type: 'integer', minimum: 1 } }, required: ['sku', 'qty'] };
/** OrderDto's schema as one would write it by hand. */
const ORDER: JsonSchema = {
  type: 'object',
  properties: { orderId: { type: 'string' }, address: ADDRESS, items: { type: 'array', items: ITEM }, billing: ADDRESS },
  required: ['orderId', 'address', 'items'],
};

/** A tree: every use of a recursive DTO is a reference to its one copy under $defs. */
class CategoryDto {
  @IsString() name!: string;
  @IsOptional() @IsObject() @ValidateNested() @Type(() => CategoryDto) parent?: CategoryDto;
  @IsOptional() @ValidateNested({ each: true }) @Type(() => CategoryDto) children?: CategoryDto[];
}

class ProductDto {
  @IsString() sku!: string;
  @ValidateNested() @Type(() => CategoryDto) category!: CategoryDto;
  @IsOptional() @ValidateNested() @Type(() => AddressDto) warehouse?: AddressDto;
}

const CATEGORY: JsonSchema = {
  type: 'object',
  properties: {
    name: { type: 'string' },
    parent: { $ref: '#/$defs/CategoryDto' },
    children: { type: 'array', items: { $ref: '#/$defs/CategoryDto' } },
  },
  required: ['name'],
};

/** Mutual recursion. `employer` is typed loosely: a class used before its declaration breaks emitted design types. */
class PersonDto {
  @IsString() name!: string;
  @IsOptional() @ValidateNested() @Type(() => CompanyDto) employer?: object;
}

class CompanyDto {
  @IsString() title!: string;
  @ValidateNested({ each: true }) @Type(() => PersonDto) staff!: PersonDto[];
}

describe('dtoToJsonSchema: nested DTOs in the canonical schema', () => {
  it('writes nested DTOs out in place: several levels, arrays of them, optional ones, the same class twice', () => {
    expect(toJsonSchema(OrderDto)).toEqual(ORDER);
    // Nothing points outside the schema.
    expect(JSON.stringify(toJsonSchema(OrderDto))).not.toContain('$ref');
  });

  it('is canonical: a hand-written equal schema, or renamed nested classes, give the same text', () => {
    const renamed = (() => {
      class Location {
        @IsNumber() lat!: number;
        @IsNumber() lng!: number;
      }
      class PostalAddress {
        @IsString() street!: string;
        @IsString() @Length(4, 10) zip!: string;
        @IsOptional() @ValidateNested() @Type(() => Location) geo?: Location;
      }
      class Line {
        @IsString() sku!: string;
        @IsInt() @Min(1) qty!: number;
      }
      class OrderDto {
        @IsString() orderId!: string;
        @ValidateNested() @Type(() => PostalAddress) address!: PostalAddress;
        @ValidateNested({ each: true }) @Type(() => Line) items!: Line[];
        @IsOptional() @ValidateNested() @Type(() => PostalAddress) billing?: PostalAddress;
      }
      return OrderDto;
    })();
    expect(canonicalJson(toJsonSchema(renamed))).toBe(canonicalJson(ORDER));
    expect(canonicalJson(toJsonSchema(OrderDto))).toBe(canonicalJson(toJsonSchema(OrderDto)));
  });

  it('keeps two nested classes of the same name apart (classes, not names, are looked up)', () => {
    const first = (() => {
      class Part {
        @IsString() a!: string;
      }
      return Part;
    })();
    const second = (() => {
      class Part {
        @IsInt() b!: number;
      }
      return Part;
    })();
    class Both {
      @ValidateNested() @Type(() => first) one!: object;
      @ValidateNested() @Type(() => second) two!: object;
    }
    expect(toJsonSchema(Both).properties).toEqual({
      one: { type: 'object', properties: { a: { type: 'string' } }, required: ['a'] },
      two: { type: 'object', properties: { b: { type: 'integer' } }, required: ['b'] },
    });
  });

  it('keeps a recursive DTO once under $defs and refers to it; non-recursive neighbours are still inlined', () => {
    expect(toJsonSchema(ProductDto)).toEqual({
      type: 'object',
      properties: { sku: { type: 'string' }, category: { $ref: '#/$defs/CategoryDto' }, warehouse: ADDRESS },
      required: ['sku', 'category'],
      $defs: { CategoryDto: CATEGORY },
    });
    // A recursive root is written out in place as well (so the root stays an object schema), and kept under $defs.
    expect(toJsonSchema(CategoryDto)).toEqual({ ...CATEGORY, $defs: { CategoryDto: CATEGORY } });
  });

  it('handles mutual recursion and two recursive classes of the same name', () => {
    const person = toJsonSchema(PersonDto);
    expect(Object.keys(person.$defs ?? {}).sort()).toEqual(['CompanyDto', 'PersonDto']);
    expect(person.properties?.employer).toEqual({ $ref: '#/$defs/CompanyDto' });
    expect(person.$defs?.CompanyDto).toMatchObject({ properties: { staff: { type: 'array', items: { $ref: '#/$defs/PersonDto' } } } });

    const node = (value: 'string' | 'int') => {
      class Node {
        @(value === 'string' ? IsString() : IsInt()) value!: unknown;
        @IsOptional() @ValidateNested() @Type(() => Node) next?: Node;
      }
      return Node;
    };
    const [StringNode, IntNode] = [node('string'), node('int')];
    class Lists {
      @ValidateNested() @Type(() => StringNode) words!: object;
      @ValidateNested() @Type(() => IntNode) numbers!: object;
    }
    const lists = toJsonSchema(Lists);
    expect(lists.properties).toEqual({ words: { $ref: '#/$defs/Node' }, numbers: { $ref: '#/$defs/Node_2' } });
    expect(lists.$defs).toEqual({
      Node: { type: 'object', properties: { value: { type: 'string' }, next: { $ref: '#/$defs/Node' } }, required: ['value'] },
      Node_2: { type: 'object', properties: { value: { type: 'integer' }, next: { $ref: '#/$defs/Node_2' } }, required: ['value'] },
    });
  });

  it('refuses a @ValidateNested property whose class cannot be told, naming it and the fix', async () => {
    class NoType {
      @ValidateNested({ each: true }) items!: ItemDto[];
    }
    expect(() => dtoToJsonSchema(NoType)).toThrow(TypeError);
    expect(() => dtoToJsonSchema(NoType)).toThrow('NoType.items has @ValidateNested() but its class cannot be told (the property\'s type is an array); add @Type(() => TheNestedDto) from class-transformer to it');
    const schemas = new SchemaManager({ schema: { enabled: true, registry: 'external' }, compliance: NO_AUDIT }, new InMemorySchemaRegistry());
    await expect(schemas.registerSchema('order.placed', NoType, '1.0.0')).rejects.toThrow(SchemaRegistrationError);
    await expect(schemas.checkCompatibility('order.placed', NoType)).rejects.toThrow(/Schema for "order\.placed" not registered: NoType\.items has @ValidateNested\(\)/);
  });

  it('uses class-transformer metadata: maps of DTOs, @Expose names; a class-typed property without @ValidateNested is not looked into', () => {
    @ValidatorConstraint({ name: 'knownGeo' })
    class KnownGeo implements ValidatorConstraintInterface {
      validate(): boolean {
        return true;
      }
    }
    class Mixed {
      @ValidateNested({ each: true }) @Type(() => ItemDto) byId!: Map<string, ItemDto>;
      @Expose({ name: 'shipping_address' }) @ValidateNested() @Type(() => AddressDto) shippingAddress!: AddressDto;
      @Validate(KnownGeo) geo!: GeoDto;
    }
    expect(toJsonSchema(Mixed)).toEqual({
      type: 'object',
      properties: { byId: { type: 'object', additionalProperties: ITEM }, shipping_address: ADDRESS, geo: {} },
      required: ['byId', 'shipping_address', 'geo'],
    });
  });
});

describe('validating nested DTO payloads (Ajv)', () => {
  const validator = new SchemaValidator();
  const order = (): Record<string, unknown> => ({
    orderId: 'o1',
    address: { street: 'Main St', zip: '1234', geo: { lat: 52.1, lng: 4.3 } },
    items: [{ sku: 'a', qty: 1 }, { sku: 'b', qty: 2 }],
  });

  it('accepts a valid payload and names every invalid nested field by its full path', () => {
    expect(validator.validate('order@1', toJsonSchema(OrderDto), order())).toEqual([]);
    const bad = order();
    bad.address = { street: 'Main St', zip: 1234, geo: { lat: 'north', lng: 4.3 } };
    bad.items = [{ sku: 'a', qty: 1 }, { sku: 'b', qty: 0 }, { qty: 3 }];
    bad.billing = { street: 'x' };
    expect(validator.validate('order@1', toJsonSchema(OrderDto), bad)).toEqual([
      { path: '$.address.zip', message: 'must be string' },
      { path: '$.address.geo.lat', message: 'must be number' },
      { path: '$.items[1].qty', message: 'must be >= 1' },
      { path: '$.items[2].sku', message: 'is required' },
      { path: '$.billing.zip', message: 'is required' },
    ]);
  });

  it('follows recursive DTOs to any depth', () => {
    const schema = toJsonSchema(ProductDto);
    const product = { sku: 's', category: { name: 'root', children: [{ name: 'a' }, { name: 'b', children: [{ name: 7 }], parent: { name: 'root' } }] } };
    expect(validator.validate('product@1', schema, product)).toEqual([{ path: '$.category.children[1].children[0].name', message: 'must be string' }]);
    expect(validator.validate('person@1', toJsonSchema(PersonDto), { name: 'p', employer: { title: 't', staff: [{ name: 'q' }, { name: 1 }] } }))
      .toEqual([{ path: '$.employer.staff[1].name', message: 'must be string' }]);
  });

  it('writes array positions as [n], numeric object keys and awkward keys quoted', () => {
    const data = { items: [{ qty: 1 }], byId: { 7: { qty: 1 } }, 'unit-price': 1, 'a/b': 1 };
    expect(issuePath(data, '/items/0/qty')).toBe('$.items[0].qty');
    expect(issuePath(data, '/byId/7/qty')).toBe('$.byId["7"].qty');
    expect(issuePath(data, '/unit-price')).toBe('$["unit-price"]');
    expect(issuePath(data, '/a~1b')).toBe('$["a/b"]');
    expect(issuePath(data, '/items/0', 'sku')).toBe('$.items[0].sku');
    expect(issuePath(data, '')).toBe('$');
  });

  it('strict mode refuses an invalid nested field at emit with its path', async () => {
    Logger.overrideLogger(false);
    try {
      const schemas = new SchemaManager({ schema: { enabled: true, registry: 'external', validationMode: 'strict' }, compliance: NO_AUDIT }, new InMemorySchemaRegistry());
      await schemas.registerSchema('order.placed', OrderDto, '1.0.0');
      await expect(schemas.stampOutgoing('order.placed', order())).resolves.toBe('order.placed@1.0.0');
      const bad = { ...order(), items: [{ sku: 'a', qty: 1 }, { sku: 'b', qty: 0 }] };
      const refused = await schemas.stampOutgoing('order.placed', bad).catch((e: unknown) => e);
      expect(refused).toBeInstanceOf(SchemaValidationError);
      expect((refused as SchemaValidationError).issues).toEqual([{ path: '$.items[1].qty', message: 'must be >= 1' }]);
      // The registered schema is the self-contained one: other processes need neither the DTO nor any definitions.
      expect((await schemas.getSchema('order.placed'))?.schema).toEqual(ORDER);
    } finally {
      Logger.overrideLogger(['log', 'error', 'warn', 'debug', 'verbose']);
    }
  });
});
