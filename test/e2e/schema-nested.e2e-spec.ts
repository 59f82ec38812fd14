import { Controller, ValidationPipe, type INestMicroservice } from '@nestjs/common';
import { Payload } from '@nestjs/microservices';
import { Test } from '@nestjs/testing';
import { Type } from 'class-transformer';
import { IsArray, IsInt, IsOptional, IsString, Length, Min, ValidateNested } from 'class-validator';
import { lastValueFrom } from 'rxjs';
import {
  RedisStreamsClient,
  RedisStreamsEnterpriseModule,
  RedisStreamsExceptionFilter,
  RedisStreamsServer,
  SchemaManager,
  SchemaValidationError,
  StreamEvent,
  type RedisStreamsEnterpriseConfig,
} from 'nestjs-redis-streams-enterprise';
import { testConfig } from '../support/nest-apps.js';
import { cleanupPrefix, rawRedis, uniquePrefix, type RawRedis } from '../support/redis.js';
import { testKeys } from '../support/keys.js';
import { waitFor } from '../support/wait-for.js';

class AddressV1 {
  @IsString() street!: string;
  @IsString() @Length(4, 10) zip!: string;
}

class LineV1 {
  @IsString() sku!: string;
  @IsInt() @Min(1) qty!: number;
}

class OrderPlacedV1 {
  @IsString() orderId!: string;
  @ValidateNested() @Type(() => AddressV1) address!: AddressV1;
  @IsArray() @ValidateNested({ each: true }) @Type(() => LineV1) lines!: LineV1[];
}

/** v2: optional fields added inside the nested DTOs (defaults are the initialisers), and an optional recursive tree. */
class AddressV2 {
  @IsString() street!: string;
  @IsString() @Length(4, 10) zip!: string;
  @IsOptional() @IsString() country = 'NL';
}

class LineV2 {
  @IsString() sku!: string;
  @IsInt() @Min(1) qty!: number;
  @IsOptional() @IsString() currency = 'EUR';
}

class CategoryV2 {
  @IsString() name!: string;
  @IsOptional() @ValidateNested({ each: true }) @Type(() => CategoryV2) children: CategoryV2[] = [];
}

class OrderPlacedV2 {
  @IsString() orderId!: string;
  @ValidateNested() @Type(() => AddressV2) address!: AddressV2;
  @IsArray() @ValidateNested({ each: true }) @Type(() => LineV2) lines!: LineV2[];
  @IsOptional() @ValidateNested() @Type(() => CategoryV2) category?: CategoryV2;
}

@Controller()
class OrdersV2Controller {
  readonly orders: OrderPlacedV2[] = [];

  @StreamEvent('order.placed', { schema: { version: '2.0.0', type: OrderPlacedV2 } })
  placed(@Payload() order: OrderPlacedV2) {
    this.orders.push(order);
  }
}

describe('nested DTOs in the schema registry (real Redis)', () => {
  const prefix = uniquePrefix('schema-nested');
  const keys = testKeys(prefix);
  const apps: INestMicroservice[] = [];
  const closers: { close(): Promise<void> }[] = [];
  let redis: RawRedis;
  let schemas: SchemaManager;
  const config = (overrides: RedisStreamsEnterpriseConfig = {}) =>
    testConfig(prefix, { ...overrides, schema: { enabled: true, validationMode: 'strict', ...overrides.schema } });
  const stream = (pattern: string) => keys.stream(pattern);
  const closeLater = <T extends { close(): Promise<void> }>(c: T): T => {
    closers.push(c);
    return c;
  };

  beforeAll(async () => {
    redis = rawRedis();
    schemas = closeLater(new SchemaManager(config()));
    await schemas.registerSchema('order.placed', OrderPlacedV1, '1.0.0');
  });

  afterAll(async () => {
    for (const c of closers) await c.close();
    await Promise.all(apps.map((app) => app.close()));
    await cleanupPrefix(redis, prefix);
    redis.disconnect();
  });

  it('a producer emits a nested DTO payload; strict mode refuses an invalid nested field at emit with its path, writing nothing', async () => {
    const producer = closeLater(new RedisStreamsClient(config()));
    await lastValueFrom(producer.emit('order.placed', { orderId: 'o1', address: { street: 'Main St', zip: '1234' }, lines: [{ sku: 'a', qty: 1 }, { sku: 'b', qty: 2 }] }));
    const refused = await lastValueFrom(producer.emit('order.placed', {
      orderId: 'o2',
      address: { street: 'Main St', zip: '12' },
      lines: [{ sku: 'a', qty: 1 }, { sku: 'b', qty: 0 }],
    })).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(SchemaValidationError);
    expect((refused as SchemaValidationError).issues).toEqual([
      { path: '$.address.zip', message: 'must NOT have fewer than 4 characters' },
      { path: '$.lines[1].qty', message: 'must be >= 1' },
    ]);
    expect((refused as SchemaValidationError).message).toContain('$.lines[1].qty must be >= 1');
    const entries = await redis.xrange(stream('order.placed'), '-', '+');
    expect(entries).toHaveLength(1);
    expect(entries[0][1][entries[0][1].indexOf('schema') + 1]).toBe('order.placed@1.0.0');
  });

  it('a v1 message reaches a v2 handler as nested DTO instances with nested defaults; a v2 message carries a recursive tree', async () => {
    await schemas.registerSchema('order.placed', OrderPlacedV2, '2.0.0', 'full');
    // The stored schema is self-contained: the recursive tree lives in its $defs, the rest is written out in place.
    const stored = (await schemas.getSchema('order.placed', '2.0.0'))!.schema;
    expect(Object.keys(stored.$defs ?? {})).toEqual(['CategoryV2']);
    expect(stored.properties?.category).toEqual({ $ref: '#/$defs/CategoryV2' });

    const moduleRef = await Test.createTestingModule({
      imports: [RedisStreamsEnterpriseModule.forRoot(config({ consumer: { group: 'orders-v2', groupStartId: '0' } }))],
      controllers: [OrdersV2Controller],
    }).compile();
    const server = moduleRef.get(RedisStreamsServer);
    const app = moduleRef.createNestMicroservice({ strategy: server });
    app.useLogger(['error']);
    app.useGlobalFilters(new RedisStreamsExceptionFilter());
    // Nest's own validation of the nested instances agrees with the registry (nothing fails, nothing is retried).
    app.useGlobalPipes(new ValidationPipe({ transform: true, whitelist: true, forbidNonWhitelisted: true }));
    await app.listen();
    apps.push(app);

    const producer = closeLater(new RedisStreamsClient(config()));
    await waitFor(async () => (await schemas.latestVersion('order.placed')) === '2.0.0');
    await lastValueFrom(producer.emit('order.placed', {
      orderId: 'o3',
      address: { street: 'Side St', zip: '5678', country: 'BE' },
      lines: [{ sku: 'c', qty: 3, currency: 'USD' }],
      category: { name: 'root', children: [{ name: 'shoes', children: [{ name: 'boots' }] }] },
    }));
    // The recursive tree is validated at any depth on emit too.
    const deep = await lastValueFrom(producer.emit('order.placed', {
      orderId: 'o4', address: { street: 'x', zip: '1234' }, lines: [], category: { name: 'root', children: [{ name: 'a', children: [{ name: 7 }] }] },
    })).catch((e: unknown) => e);
    expect((deep as SchemaValidationError).issues).toEqual([{ path: '$.category.children[0].children[0].name', message: 'must be string' }]);

    const { orders } = app.get(OrdersV2Controller);
    await waitFor(() => orders.length === 2, { message: 'the v1 and the v2 order' });
    // Entries are handled concurrently: find them by id, not by arrival order.
    const upcast = orders.find((o) => o.orderId === 'o1')!;
    const current = orders.find((o) => o.orderId === 'o3')!;
    expect(upcast).toBeInstanceOf(OrderPlacedV2);
    expect(upcast.address).toBeInstanceOf(AddressV2);
    expect(upcast.lines.every((line) => line instanceof LineV2)).toBe(true);
    expect({ ...upcast, address: { ...upcast.address }, lines: upcast.lines.map((line) => ({ ...line })) }).toEqual({
      orderId: 'o1',
      address: { street: 'Main St', zip: '1234', country: 'NL' },
      lines: [{ sku: 'a', qty: 1, currency: 'EUR' }, { sku: 'b', qty: 2, currency: 'EUR' }],
    });
    expect(current.address).toEqual(Object.assign(new AddressV2(), { street: 'Side St', zip: '5678', country: 'BE' }));
    expect(current.category).toBeInstanceOf(CategoryV2);
    const boots = current.category!.children[0].children[0];
    expect(boots).toBeInstanceOf(CategoryV2);
    expect(boots).toEqual(Object.assign(new CategoryV2(), { name: 'boots', children: [] }));
    const stamps = (await redis.xrange(stream('order.placed'), '-', '+')).map(([, f]) => f[f.indexOf('schema') + 1]);
    expect(stamps).toEqual(['order.placed@1.0.0', 'order.placed@2.0.0']);
    expect(server.getMetrics()).toMatchObject({ failed: 0, retried: 0, deadLettered: 0, schemaInvalid: 0 });
  });
});
