import { Controller, type INestMicroservice } from '@nestjs/common';
import { Payload } from '@nestjs/microservices';
import { lastValueFrom } from 'rxjs';
import { z } from 'zod';
import {
  DeadLetterManager,
  SchemaManager,
  SchemaRegistrationError,
  SchemaValidationError,
  StreamEvent,
  type RedisStreamsEnterpriseConfig,
} from 'nestjs-redis-streams-enterprise';
import { startConsumer, testConfig } from '../support/nest-apps.js';
import { cleanupPrefix, rawRedis, uniquePrefix, type RawRedis } from '../support/redis.js';
import { testKeys } from '../support/keys.js';
import { waitFor } from '../support/wait-for.js';

/**
 * Issue 12, items 2-4: strict validation of messages without a `schema` stamp, the paths of issues about a property
 * (additionalProperties, required, propertyNames), and schemas converted from zod (JSON Schema draft 2020-12).
 */
describe('schema: unstamped messages, property paths, zod (draft 2020-12) schemas (real Redis)', () => {
  const prefix = uniquePrefix('schema-defects');
  const keys = testKeys(prefix);
  const apps: INestMicroservice[] = [];
  const closers: { close(): Promise<void> }[] = [];
  let redis: RawRedis;
  let letters: DeadLetterManager;
  const config = (overrides: RedisStreamsEnterpriseConfig = {}) =>
    testConfig(prefix, { ...overrides, schema: { enabled: true, validationMode: 'strict', ...overrides.schema } });
  const stream = (pattern: string) => keys.stream(pattern);
  const schemaInvalid = (pattern: string) => letters.list(pattern, { reason: 'schema-invalid' });
  const refusal = async (emitting: Promise<unknown>): Promise<SchemaValidationError> => {
    const error = await emitting.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SchemaValidationError);
    return error as SchemaValidationError;
  };

  beforeAll(() => {
    redis = rawRedis();
    letters = new DeadLetterManager(config());
    closers.push(letters);
  });

  afterAll(async () => {
    for (const c of closers) await c.close();
    await Promise.all(apps.map((app) => app.close()));
    await cleanupPrefix(redis, prefix);
    redis.disconnect();
  });

  describe('a message without a schema stamp (raw XADD, another language, an old producer)', () => {
    it('strict: is validated against the latest version of its pattern\'s event type and dead-lettered when invalid; a type without schema is not validated', async () => {
      @Controller()
      class ReadingsController {
        readonly readings: unknown[] = [];
        readonly notes: unknown[] = [];
        @StreamEvent('reading.taken')
        taken(@Payload() data: unknown) {
          this.readings.push(data);
        }
        @StreamEvent('note.left')
        left(@Payload() data: unknown) {
          this.notes.push(data);
        }
      }
      const { app, server } = await startConsumer(config({ consumer: { group: 'unstamped-strict' } }), [ReadingsController]);
      apps.push(app);
      const schemas = app.get(SchemaManager);
      await schemas.registerSchema('reading.taken', { type: 'object', properties: { a: { type: 'string' } }, required: ['a'] }, '1.0.0');
      // 1.1.0 constrains a property 1.0.0 left open: { unit: 'K' } is valid under 1.0.0 only.
      await schemas.registerSchema('reading.taken', { type: 'object', properties: { a: { type: 'string' }, unit: { enum: ['C', 'F'], default: 'C' } }, required: ['a'] }, '1.1.0');

      await redis.xadd(stream('reading.taken'), '*', 'data', JSON.stringify({ a: 5 }));
      await redis.xadd(stream('reading.taken'), '*', 'data', JSON.stringify({ a: 'x', unit: 'K' }));
      // The same payload stamped is dead-lettered too: leaving the stamp off changes nothing.
      await redis.xadd(stream('reading.taken'), '*', 'schema', 'reading.taken@1.0.0', 'data', JSON.stringify({ a: 5 }));
      await redis.xadd(stream('reading.taken'), '*', 'data', JSON.stringify({ a: 'ok' }));
      // No schema registered for note.left: strict mode does not refuse it (as emit sends it unstamped).
      await redis.xadd(stream('note.left'), '*', 'data', JSON.stringify({ anything: 1 }));

      const { readings, notes } = app.get(ReadingsController);
      await waitFor(async () => readings.length === 1 && notes.length === 1 && (await schemaInvalid('reading.taken')).length === 3, { message: 'two handled, three dead-lettered' });
      expect(readings).toEqual([{ a: 'ok' }]);
      expect(notes).toEqual([{ anything: 1 }]);
      const dead = await schemaInvalid('reading.taken');
      expect(dead.map((d) => [d.errorName, d.fields.schema ?? null, d.errorMessage])).toEqual(expect.arrayContaining([
        ['SchemaValidationError', null, expect.stringMatching(/does not match schema version 1\.1\.0: \$\.a must be string/)],
        ['SchemaValidationError', null, expect.stringMatching(/does not match schema version 1\.1\.0: \$\.unit /)],
        ['SchemaValidationError', 'reading.taken@1.0.0', expect.stringMatching(/does not match schema version 1\.0\.0: \$\.a must be string/)],
      ]));
      expect(server.getMetrics()).toMatchObject({ schemaInvalid: 3, deadLettered: 3 });
    });

    it('warn: is validated, logged, counted and handled; ignore: is not validated', async () => {
      const schemas = new SchemaManager(config());
      closers.push(schemas);
      await schemas.registerSchema('gauge.read', { type: 'object', properties: { a: { type: 'string' } }, required: ['a'] }, '1.0.0');
      @Controller()
      class GaugeController {
        readonly seen: unknown[] = [];
        @StreamEvent('gauge.read')
        read(@Payload() data: unknown) {
          this.seen.push(data);
        }
      }
      const started = await Promise.all((['strict', 'warn', 'ignore'] as const).map(async (validationMode) => {
        const { app, server } = await startConsumer(config({ consumer: { group: `gauge-${validationMode}` }, schema: { validationMode } }), [GaugeController]);
        apps.push(app);
        return { validationMode, app, server };
      }));
      await redis.xadd(stream('gauge.read'), '*', 'data', JSON.stringify({ a: 5 }));
      await redis.xadd(stream('gauge.read'), '*', 'data', JSON.stringify({ a: 'ok' }));
      const expected = { strict: { seen: 1, schemaInvalid: 1, deadLettered: 1 }, warn: { seen: 2, schemaInvalid: 1, deadLettered: 0 }, ignore: { seen: 2, schemaInvalid: 0, deadLettered: 0 } };
      for (const { validationMode, app, server } of started) {
        await waitFor(() => server.getMetrics().acked + server.getMetrics().deadLettered === 2, { message: `${validationMode} to settle both` });
        const metrics = server.getMetrics();
        expect({ mode: validationMode, seen: app.get(GaugeController).seen.length, schemaInvalid: metrics.schemaInvalid, deadLettered: metrics.deadLettered })
          .toEqual({ mode: validationMode, ...expected[validationMode] });
      }
    });
  });

  it('a property the schema forbids or requires is reported at its own path, on emit and in the dead letter', async () => {
    @Controller()
    class ClosedController {
      readonly seen: unknown[] = [];
      @StreamEvent('closed.shape')
      shaped(@Payload() data: unknown) {
        this.seen.push(data);
      }
    }
    const { app, client } = await startConsumer(config({ consumer: { group: 'closed' } }), [ClosedController]);
    apps.push(app);
    const schemas = app.get(SchemaManager);
    await schemas.registerSchema('closed.shape', { type: 'object', properties: { a: { type: 'string' } }, required: ['a'], additionalProperties: false }, '1.0.0');

    const extra = await refusal(lastValueFrom(client.emit('closed.shape', { a: 'x', extra: 1, other: 2 })));
    expect(extra.issues).toEqual([
      { path: '$.extra', message: 'is not allowed (additionalProperties: false)' },
      { path: '$.other', message: 'is not allowed (additionalProperties: false)' },
    ]);
    const missing = await refusal(lastValueFrom(client.emit('closed.shape', { b: 1 })));
    expect(missing.issues.map((i) => i.path)).toEqual(['$.a', '$.b']);

    await redis.xadd(stream('closed.shape'), '*', 'schema', 'closed.shape@1.0.0', 'data', JSON.stringify({ a: 'x', extra: 1, other: 2 }));
    await lastValueFrom(client.emit('closed.shape', { a: 'fine' }));
    await waitFor(async () => app.get(ClosedController).seen.length === 1 && (await schemaInvalid('closed.shape')).length === 1, { message: 'one handled, one dead-lettered' });
    const [letter] = await schemaInvalid('closed.shape');
    expect(letter.errorMessage).toMatch(/: \$\.extra is not allowed \(additionalProperties: false\); \$\.other is not allowed/);
    expect(app.get(ClosedController).seen).toEqual([{ a: 'fine' }]);
  });

  describe('a zod schema (converted to JSON Schema draft 2020-12)', () => {
    const parcelV1 = z.object({
      route: z.tuple([z.string(), z.number()]),
      id: z.union([z.string(), z.number().int()]),
      counts: z.record(z.string().regex(/^[a-z]+$/), z.number()),
      note: z.string().nullable(),
      shipTo: z.object({ city: z.string() }).nullable(),
    });

    it('validates tuples, unions, records and nullable fields by their draft: valid values are handled, invalid ones refused and dead-lettered with a precise path', async () => {
      @Controller()
      class ParcelsController {
        readonly parcels: unknown[] = [];
        @StreamEvent('parcel.sent')
        sent(@Payload() data: unknown) {
          this.parcels.push(data);
        }
      }
      const { app, client } = await startConsumer(config({ consumer: { group: 'parcels' } }), [ParcelsController]);
      apps.push(app);
      const schemas = app.get(SchemaManager);
      await schemas.registerSchema('parcel.sent', parcelV1, '1.0.0');

      const valid = [
        { route: ['AMS', 1], id: 'p-1', counts: { box: 2 }, note: null, shipTo: null },
        { route: ['OSL', 2.5], id: 7, counts: {}, note: 'fragile', shipTo: { city: 'Oslo' } },
      ];
      for (const parcel of valid) await lastValueFrom(client.emit('parcel.sent', parcel));

      const base = valid[0];
      const invalid: [unknown, string][] = [
        [{ ...base, route: ['AMS', 'one'] }, '$.route[1]'],
        [{ ...base, route: ['AMS', 1, 2] }, '$.route'],
        [{ ...base, id: true }, '$.id'],
        [{ ...base, id: 1.5 }, '$.id'],
        [{ ...base, counts: { box: 'two' } }, '$.counts.box'],
        [{ ...base, counts: { Box: 2 } }, '$.counts.Box'],
        [{ ...base, note: 5 }, '$.note'],
        [{ ...base, shipTo: { city: 1 } }, '$.shipTo.city'],
      ];
      for (const [parcel, path] of invalid) {
        const error = await refusal(lastValueFrom(client.emit('parcel.sent', parcel)));
        expect({ path, issues: error.issues }).toEqual({ path, issues: expect.arrayContaining([expect.objectContaining({ path })]) });
        // Nothing is reported elsewhere: every issue is at the value or at the union/nullable around it.
        expect(error.issues.every((i) => path.startsWith(i.path))).toBe(true);
      }

      await redis.xadd(stream('parcel.sent'), '*', 'schema', 'parcel.sent@1.0.0', 'data', JSON.stringify({ ...base, route: ['AMS', 'one'] }));
      await redis.xadd(stream('parcel.sent'), '*', 'data', JSON.stringify({ ...base, counts: { Box: 2 } }));
      const { parcels } = app.get(ParcelsController);
      await waitFor(async () => parcels.length === 2 && (await schemaInvalid('parcel.sent')).length === 2, { message: 'two handled, two dead-lettered' });
      expect(parcels).toEqual(expect.arrayContaining(valid));
      const messages = (await schemaInvalid('parcel.sent')).map((d) => d.errorMessage);
      expect(messages).toEqual(expect.arrayContaining([
        expect.stringMatching(/\$\.route\[1\] must be number/),
        expect.stringMatching(/\$\.counts\.Box is not a valid property name: must match pattern/),
      ]));
    });

    it('a compatible next version of a zod tuple schema registers and is used; a changed tuple is refused', async () => {
      @Controller()
      class ParcelsV2Controller {
        readonly parcels: unknown[] = [];
        @StreamEvent('parcel.moved')
        moved(@Payload() data: unknown) {
          this.parcels.push(data);
        }
      }
      const { app, client } = await startConsumer(config({ consumer: { group: 'parcels-v2' } }), [ParcelsV2Controller]);
      apps.push(app);
      const schemas = app.get(SchemaManager);
      await schemas.registerSchema('parcel.moved', parcelV1, '1.0.0');
      const v2 = await schemas.registerSchema('parcel.moved', parcelV1.extend({ weightKg: z.number().positive().optional() }), '1.1.0', 'full');
      expect(v2.version).toBe('1.1.0');
      // Registering the same zod schema again is a no-op, whatever draft it was stored with.
      expect((await schemas.registerSchema('parcel.moved', parcelV1.extend({ weightKg: z.number().positive().optional() }), '9.9.9')).version).toBe('1.1.0');
      const changed = parcelV1.extend({ route: z.tuple([z.string(), z.string()]) });
      const refused = await schemas.registerSchema('parcel.moved', changed, '2.0.0', 'backward').catch((e: unknown) => e);
      expect(refused).toBeInstanceOf(SchemaRegistrationError);
      expect((refused as SchemaRegistrationError).breakingChanges).toEqual(expect.arrayContaining([expect.objectContaining({ path: '$.route' })]));

      const parcel = { route: ['AMS', 1], id: 'p-9', counts: { box: 1 }, note: null, shipTo: { city: 'Utrecht' }, weightKg: 2.5 };
      await lastValueFrom(client.emit('parcel.moved', parcel));
      const error = await refusal(lastValueFrom(client.emit('parcel.moved', { ...parcel, weightKg: -1 })));
      expect(error.version).toBe('1.1.0');
      expect(error.issues).toEqual([expect.objectContaining({ path: '$.weightKg' })]);
      await waitFor(() => app.get(ParcelsV2Controller).parcels.length === 1, { message: 'the v1.1.0 parcel' });
      expect(app.get(ParcelsV2Controller).parcels).toEqual([parcel]);
      const [, fields] = (await redis.xrange(stream('parcel.moved'), '-', '+')).at(-1) as [string, string[]];
      expect(fields[fields.indexOf('schema') + 1]).toBe('parcel.moved@1.1.0');
    });
  });
});
