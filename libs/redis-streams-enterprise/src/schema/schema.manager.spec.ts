import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import { Type } from 'class-transformer';
import { IsEmail, IsIn, IsInt, IsOptional, IsString, Min, ValidateNested } from 'class-validator';
import { JSONSchema } from 'class-validator-jsonschema';
import { z } from 'zod';
import { SchemaRegistryMissingError } from '../errors/schema-registry-missing.error.js';
import { SchemaUpcastError } from '../errors/schema-upcast.error.js';
import { SchemaValidationError } from '../errors/schema-validation.error.js';
import { InvalidOptionsError } from '../errors/invalid-options.error.js';
import type { RedisStreamsEnterpriseConfig } from '../config/redis-streams.options.js';
import { handlerSchemaOf, type HandlerSchema } from './handler-schema.js';
import { InMemorySchemaRegistry } from './in-memory.schema-registry.js';
import { RedisSchemaRegistry } from './redis.schema-registry.js';
import { SchemaManager } from './schema.manager.js';

class UserV1 {
  @IsString() id!: string;
  @IsEmail() email!: string;
}

class UserV2 {
  @IsString() id!: string;
  @IsEmail() email!: string;
  @IsOptional() @IsIn(['free', 'pro']) plan: string = 'free';
  @IsOptional() @IsInt() @Min(0) logins = 0;
}

class AddressV1 {
  @IsString() street!: string;
  @IsString() zip!: string;
}

class ItemV1 {
  @IsString() sku!: string;
  @IsInt() @Min(1) qty!: number;
}

class OrderV1 {
  @IsString() orderId!: string;
  @ValidateNested() @Type(() => AddressV1) address!: AddressV1;
  @ValidateNested({ each: true }) @Type(() => ItemV1) items!: ItemV1[];
}

/** v2 adds optional fields inside the nested DTOs: a class default (country) and a JSON Schema default too (currency). */
class AddressV2 {
  @IsString() street!: string;
  @IsString() zip!: string;
  @IsOptional() @IsString() country = 'NL';
}

class ItemV2 {
  @IsString() sku!: string;
  @IsInt() @Min(1) qty!: number;
  @IsOptional() @IsString() @JSONSchema({ default: 'EUR' }) currency = 'EUR';
}

class OrderV2 {
  @IsString() orderId!: string;
  @ValidateNested() @Type(() => AddressV2) address!: AddressV2;
  @ValidateNested({ each: true }) @Type(() => ItemV2) items!: ItemV2[];
  @IsOptional() @ValidateNested() @Type(() => AddressV2) billing?: AddressV2;
}

const v1Json = { type: 'object', properties: { sku: { type: 'string' } }, required: ['sku'] };
const v2Json = { type: 'object', properties: { sku: { type: 'string' }, colour: { type: 'string', default: 'black' } }, required: ['sku'] };
const v3Json = { type: 'object', properties: { sku: { type: 'string' }, colour: { type: 'string', default: 'black' }, size: { type: 'integer', default: 1 } }, required: ['sku'] };

function reader(schema: Record<string, unknown>): HandlerSchema {
  const parsed = handlerSchemaOf({ schema });
  if (!parsed || parsed instanceof Error) throw new Error('bad reader');
  return parsed;
}

/** No Redis in this spec: registrations are not audited (the audit trail would connect to the default URL). */
const NO_AUDIT = { audit: { enabled: false } };

function manager(schema: RedisStreamsEnterpriseConfig['schema'] = {}, registry = new InMemorySchemaRegistry()): SchemaManager {
  return new SchemaManager({ schema: { enabled: true, registry: 'external', validationMode: 'strict', ...schema }, compliance: NO_AUDIT }, registry);
}

describe('SchemaManager with a registry of its own (external)', () => {
  beforeAll(() => Logger.overrideLogger(false));
  afterAll(() => Logger.overrideLogger(['log', 'error', 'warn', 'debug', 'verbose']));

  it('stores versions in the registry it was given; refuses to start without one, or with one it would ignore', async () => {
    const registry = new InMemorySchemaRegistry();
    const schemas = manager({}, registry);
    await schemas.registerSchema('item.added', v1Json, '1.0.0');
    expect(await registry.listVersions('item.added')).toEqual(['1.0.0']);
    expect(schemas.registry).toBe(registry);
    expect(() => new SchemaManager({ schema: { enabled: true, registry: 'external' } })).toThrow(SchemaRegistryMissingError);
    expect(() => new SchemaManager({ schema: { enabled: true, registry: 'external' } })).toThrow(/schema\.registry 'external' but no SchemaRegistry implementation was provided/);
    expect(() => new SchemaManager({ schema: { enabled: true } }, registry)).toThrow(InvalidOptionsError);
    // With schema.enabled off, nothing needs the registry at start: using it fails instead.
    await expect(new SchemaManager({ schema: { registry: 'external' } }).listVersions('x')).rejects.toThrow(SchemaRegistryMissingError);
    const redis = new SchemaManager({ schema: { enabled: true } });
    expect(redis.registry).toBeInstanceOf(RedisSchemaRegistry);
    await redis.close();
  });

  it('upcasts an older version to the handler version: JSON Schema defaults for added fields, counted', async () => {
    const schemas = manager();
    await schemas.registerSchema('item.added', v1Json, '1.0.0');
    await schemas.registerSchema('item.added', v2Json, '2.0.0');
    await schemas.registerSchema('item.added', v3Json, '3.0.0');
    const read = await schemas.readIncoming('item.added', 'item.added@1.0.0', { sku: 'a' }, reader({ version: '3.0.0' }));
    expect(read).toEqual({ data: { sku: 'a', colour: 'black', size: 1 }, invalid: false });
    const same = await schemas.readIncoming('item.added', 'item.added@3.0.0', { sku: 'b', colour: 'red' }, reader({ version: '3.0.0' }));
    expect(same.data).toEqual({ sku: 'b', colour: 'red', size: 1 });
    // An older handler reads a newer, forward-compatible message (the extra field passes through: open schema).
    const down = await schemas.readIncoming('item.added', 'item.added@3.0.0', { sku: 'c', size: 2 }, reader({ version: '1.0.0' }));
    expect(down.data).toEqual({ sku: 'c', size: 2 });
    expect(schemas.getMetrics().consume).toEqual({ valid: 3, invalid: 0, skipped: 0, upcast: 2, unmappable: 0 });
  });

  it('turns the payload into the handler DTO: class initialisers fill fields added after the message was written', async () => {
    const schemas = manager();
    await schemas.registerSchema('user.created', UserV1, '1.0.0');
    await schemas.registerSchema('user.created', UserV2, '2.0.0');
    const read = await schemas.readIncoming('user.created', 'user.created@1.0.0', { id: 'u1', email: 'ada@example.com' }, reader({ version: '2.0.0', type: UserV2 }));
    expect(read.data).toBeInstanceOf(UserV2);
    expect(read.data).toEqual(Object.assign(new UserV2(), { id: 'u1', email: 'ada@example.com', plan: 'free', logins: 0 }));
    // Without a version, the reader schema is the DTO's own.
    const byType = await schemas.readIncoming('user.created', 'user.created@1.0.0', { id: 'u2', email: 'bo@example.com' }, reader({ type: UserV2 }));
    expect(byType.data).toMatchObject({ id: 'u2', plan: 'free', logins: 0 });
    expect(byType.data).toBeInstanceOf(UserV2);
    // Unstamped messages are checked against the reader schema.
    const unstamped = await schemas.readIncoming('user.created', undefined, { id: 'u3', email: 'nope' }, reader({ type: UserV2 }));
    expect(unstamped.rejection).toBeInstanceOf(SchemaUpcastError);
    expect(unstamped.rejection?.message).toMatch(/without a schema version cannot be read as UserV2.*\$\.email/);
  });

  it('refuses what cannot be mapped in strict mode (unknown writer version, incompatible versions); an unknown handler version throws', async () => {
    const schemas = manager();
    await schemas.registerSchema('order.placed', { type: 'object', properties: { id: { type: 'string' }, amount: { type: 'number' } }, required: ['id', 'amount'] }, '1.0.0');
    await schemas.registerSchema('order.placed', { type: 'object', properties: { id: { type: 'string' }, amount: { type: 'string' } }, required: ['id', 'amount'] }, '2.0.0', 'none');
    const unknownWriter = await schemas.readIncoming('order.placed', 'order.placed@0.9.0', { id: 'o' }, reader({ version: '2.0.0' }));
    expect(unknownWriter.rejection).toBeInstanceOf(SchemaUpcastError);
    expect(unknownWriter.rejection?.message).toMatch(/written with schema version 0\.9\.0 cannot be read as version 2\.0\.0: version 0\.9\.0 is not registered/);
    // The handler's own version unknown: thrown, so the consumer retries (a deploy race) before dead-lettering.
    await expect(schemas.readIncoming('order.placed', 'order.placed@1.0.0', { id: 'o', amount: 1 }, reader({ version: '7.0.0' }))).rejects.toThrow(/the handler's version 7\.0\.0 is not registered/);
    const incompatible = await schemas.readIncoming('order.placed', 'order.placed@1.0.0', { id: 'o', amount: 1 }, reader({ version: '2.0.0' }));
    expect(incompatible.rejection).toBeInstanceOf(SchemaUpcastError);
    expect((incompatible.rejection as SchemaUpcastError).reasons).toEqual([expect.objectContaining({ path: '$.amount', message: expect.stringMatching(/^type-changed: /) })]);
    // A message invalid as written is a validation error, not a mapping error.
    const invalid = await schemas.readIncoming('order.placed', 'order.placed@1.0.0', { id: 'o', amount: 'x' }, reader({ version: '2.0.0' }));
    expect(invalid.rejection).toBeInstanceOf(SchemaValidationError);
    expect(schemas.getMetrics().consume).toEqual({ valid: 0, invalid: 3, skipped: 0, upcast: 0, unmappable: 2 });
  });

  it('warn hands over a best-effort mapping and counts; ignore maps without checking and counts as skipped', async () => {
    const registry = new InMemorySchemaRegistry();
    const warn = manager({ validationMode: 'warn' }, registry);
    await warn.registerSchema('user.created', UserV1, '1.0.0');
    const read = await warn.readIncoming('user.created', 'user.created@1.0.0', { id: 'u1', email: 'nope' }, reader({ type: UserV2 }));
    expect(read.invalid).toBe(true);
    expect(read.rejection).toBeUndefined();
    expect(read.data).toBeInstanceOf(UserV2);
    expect(warn.getMetrics().consume).toMatchObject({ valid: 0, invalid: 1 });
    const ignore = manager({ validationMode: 'ignore' }, registry);
    const ignored = await ignore.readIncoming('user.created', 'user.created@1.0.0', { id: 'u1', email: 'nope' }, reader({ type: UserV2 }));
    expect(ignored).toEqual({ data: expect.any(UserV2), invalid: false });
    expect(ignore.getMetrics()).toMatchObject({ validationMode: 'ignore', consume: { valid: 0, invalid: 0, skipped: 1 } });
  });

  it('counts emits per mode: strict refuses, warn stamps an invalid payload, ignore stamps unchecked', async () => {
    const registry = new InMemorySchemaRegistry();
    const strict = manager({}, registry);
    await strict.registerSchema('item.added', v1Json, '1.0.0');
    await expect(strict.stampOutgoing('item.added', { sku: 'a' })).resolves.toBe('item.added@1.0.0');
    await expect(strict.stampOutgoing('item.added', { sku: 1 })).rejects.toBeInstanceOf(SchemaValidationError);
    await expect(strict.stampOutgoing('no.schema', { any: 1 })).resolves.toBeUndefined();
    expect(strict.getMetrics().emit).toEqual({ valid: 1, invalid: 1, skipped: 0 });
    const warn = manager({ validationMode: 'warn' }, registry);
    await expect(warn.stampOutgoing('item.added', { sku: 1 })).resolves.toBe('item.added@1.0.0');
    expect(warn.getMetrics().emit).toEqual({ valid: 0, invalid: 1, skipped: 0 });
    const ignore = manager({ validationMode: 'ignore' }, registry);
    await expect(ignore.stampOutgoing('item.added', { sku: 1 })).resolves.toBe('item.added@1.0.0');
    expect(ignore.getMetrics().emit).toEqual({ valid: 0, invalid: 0, skipped: 1 });
  });

  it('upcasts nested DTOs: nested instances, nested class and JSON Schema defaults, nested breaking changes named by path', async () => {
    const schemas = manager();
    await schemas.registerSchema('order.placed', OrderV1, '1.0.0');
    await schemas.registerSchema('order.placed', OrderV2, '2.0.0', 'full');
    const written = () => ({ orderId: 'o1', address: { street: 'Main St', zip: '1234' }, items: [{ sku: 'a', qty: 1 }, { sku: 'b', qty: 2, currency: 'USD' }] });
    const read = await schemas.readIncoming('order.placed', 'order.placed@1.0.0', written(), reader({ version: '2.0.0', type: OrderV2 }));
    expect(read.invalid).toBe(false);
    const order = read.data as OrderV2;
    expect(order).toBeInstanceOf(OrderV2);
    expect(order.address).toBeInstanceOf(AddressV2);
    expect(order.items.every((item) => item instanceof ItemV2)).toBe(true);
    expect(order).toEqual(Object.assign(new OrderV2(), {
      orderId: 'o1',
      address: Object.assign(new AddressV2(), { street: 'Main St', zip: '1234', country: 'NL' }),
      items: [Object.assign(new ItemV2(), { sku: 'a', qty: 1, currency: 'EUR' }), Object.assign(new ItemV2(), { sku: 'b', qty: 2, currency: 'USD' })],
    }));
    expect(order.billing).toBeUndefined();
    // Without a DTO, only the registered version's JSON Schema defaults apply, inside array items too.
    const plain = await schemas.readIncoming('order.placed', 'order.placed@1.0.0', written(), reader({ version: '2.0.0' }));
    expect(plain.data).toEqual({ orderId: 'o1', address: { street: 'Main St', zip: '1234' }, items: [{ sku: 'a', qty: 1, currency: 'EUR' }, { sku: 'b', qty: 2, currency: 'USD' }] });
    // A message invalid as written is refused with the nested path.
    const invalid = await schemas.readIncoming('order.placed', 'order.placed@1.0.0', { ...written(), items: [{ sku: 'a', qty: 0 }] }, reader({ version: '2.0.0', type: OrderV2 }));
    expect((invalid.rejection as SchemaValidationError).issues).toEqual([{ path: '$.items[0].qty', message: 'must be >= 1' }]);
    // A version whose array item changed type cannot be read as 2.0.0: the reason names the nested path.
    const itemQtyString = { ...(await schemas.getSchema('order.placed', '2.0.0'))!.schema };
    const items = itemQtyString.properties!.items as { items: { properties: Record<string, unknown> } };
    await schemas.registerSchema('order.placed', {
      ...itemQtyString,
      properties: { ...itemQtyString.properties, items: { ...items, items: { ...items.items, properties: { ...items.items.properties, qty: { type: 'string' } } } } },
    }, '3.0.0', 'none');
    const unmappable = await schemas.readIncoming('order.placed', 'order.placed@3.0.0', { ...written(), items: [{ sku: 'a', qty: 'one' }] }, reader({ version: '2.0.0', type: OrderV2 }));
    expect(unmappable.rejection).toBeInstanceOf(SchemaUpcastError);
    expect((unmappable.rejection as SchemaUpcastError).reasons).toEqual([expect.objectContaining({ path: '$.items[].qty', message: expect.stringMatching(/^type-changed: /) })]);
  });

  it('checks the shape of handler schema options', () => {
    expect(handlerSchemaOf({})).toBeUndefined();
    expect(handlerSchemaOf({ schema: { version: '1.0.0', type: UserV2 } })).toEqual({ version: '1.0.0', type: UserV2, label: 'version 1.0.0 (UserV2)' });
    const bad = handlerSchemaOf({ schema: { versoin: '1.0.0' } });
    expect(bad).toBeInstanceOf(InvalidOptionsError);
    expect((bad as Error).message).toMatch(/handler option schema needs a version, a type, or both; handler option schema\.versoin is not a known option/);
    expect(handlerSchemaOf({ schema: { type: 'UserV2' } })).toBeInstanceOf(InvalidOptionsError);
  });

  it('checks an unstamped message for a plain handler against the latest version; a type without schema passes', async () => {
    const schemas = manager();
    await schemas.registerSchema('item.added', v1Json, '1.0.0');
    await schemas.registerSchema('item.added', { ...v2Json, properties: { ...v2Json.properties, colour: { enum: ['black', 'red'], default: 'black' } } }, '1.1.0');
    // Valid under 1.0.0 (open), not under the latest.
    const unstamped = await schemas.readIncoming('item.added', undefined, { sku: 'a', colour: 'blue' });
    expect(unstamped.rejection).toBeInstanceOf(SchemaValidationError);
    expect(unstamped.rejection?.message).toMatch(/does not match schema version 1\.1\.0: \$\.colour /);
    expect(await schemas.readIncoming('item.added', undefined, { sku: 'b', colour: 'red' })).toEqual({ data: { sku: 'b', colour: 'red' }, invalid: false });
    expect(await schemas.readIncoming('no.schema', undefined, { anything: 1 })).toEqual({ data: { anything: 1 }, invalid: false });
    const warn = manager({ validationMode: 'warn' });
    await warn.registerSchema('item.added', v1Json, '1.0.0');
    expect(await warn.readIncoming('item.added', undefined, { sku: 1 })).toEqual({ data: { sku: 1 }, invalid: true });
    expect(schemas.getMetrics().consume).toMatchObject({ valid: 1, invalid: 1 });
  });

  it('keeps a zod schema\'s draft (2020-12); one stored without it before is the same schema and still validates by its keywords', async () => {
    const registry = new InMemorySchemaRegistry();
    const schemas = manager({}, registry);
    const parcel = z.object({ route: z.tuple([z.string(), z.number()]) });
    const registered = await schemas.registerSchema('parcel.sent', parcel, '1.0.0');
    expect(registered.schema.$schema).toBe('https://json-schema.org/draft/2020-12/schema');
    expect((await schemas.validate('parcel.sent', { route: ['AMS', 1] })).issues).toEqual([]);

    const { $schema: _draft, ...legacy } = registered.schema;
    await registry.addVersion('parcel.legacy', '1.0.0', legacy, null);
    const legacyManager = manager({}, registry);
    expect((await legacyManager.registerSchema('parcel.legacy', parcel, '2.0.0')).version).toBe('1.0.0');
    expect((await legacyManager.validate('parcel.legacy', { route: ['AMS', 1] })).issues).toEqual([]);
    expect((await legacyManager.validate('parcel.legacy', { route: ['AMS', 'x'] })).issues).toEqual([{ path: '$.route[1]', message: 'must be number' }]);
  });
});
