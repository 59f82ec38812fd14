import { z } from 'zod';
import {
  AuditTrail,
  DeadLetterManager,
  PartitioningManager,
  ReplayManager,
  SchemaManager,
  validateOptions,
  type AuditEntry,
  type RedisStreamsEnterpriseConfig,
} from 'nestjs-redis-streams-enterprise';
import { runCli } from '../../libs/redis-streams-enterprise/src/cli/program.js';
import { osUser } from '../../libs/redis-streams-enterprise/src/cli/parse.js';
import { testConfig } from '../support/nest-apps.js';
import { cleanupPrefix, rawRedis, redisUrl, uniquePrefix, type RawRedis } from '../support/redis.js';
import { testKeys } from '../support/keys.js';

/** A pattern an attacker (or a careless operator) could name: a newline, quotes and a spreadsheet formula. */
const HOSTILE_PATTERN = '=cmd|\' /C calc\'!A0"\nforged line';
const HOSTILE_ACTOR = '=HYPERLINK("http://evil.example","click")';

async function cli(argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await runCli(argv, { stdout: { write: (t: string) => (stdout += t) }, stderr: { write: (t: string) => (stderr += t) }, env: { REDIS_URL: redisUrl() } });
  return { code, stdout, stderr };
}

/** RFC 4180 parser (quoted cells may hold commas, doubled quotes and line breaks). */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let cell = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') (cell += '"'), i++;
      else if (c === '"') quoted = false;
      else cell += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') row.push(cell), (cell = '');
    else if (c === '\r' && text[i + 1] === '\n') row.push(cell), rows.push(row), (row = []), (cell = ''), i++;
    else cell += c;
  }
  return rows;
}

describe('audit trail of operator actions (real Redis)', () => {
  const prefix = uniquePrefix('audit');
  const keys = testKeys(prefix);
  let redis: RawRedis;
  const closers: { close(): Promise<void> }[] = [];
  const config = (extra: RedisStreamsEnterpriseConfig = {}) => testConfig(prefix, { compliance: { actor: 'ops-alice' }, replay: { enabled: true }, ...extra });
  const trail = () => new AuditTrail(validateOptions(config()), async () => redis);
  const find = async (correlationId: string): Promise<AuditEntry> => {
    const found = (await trail().read({ count: 1_000 })).filter((e) => e.correlationId === correlationId);
    expect(found).toHaveLength(1);
    return found[0];
  };
  const seedLetter = (n: number, errorName: string) =>
    redis.xadd(keys.deadLetter('au.orders'), '*', 'pattern', 'au.orders', 'data', JSON.stringify({ n }), 'rse.dlq.group', 'svc', 'rse.dlq.errorName', errorName);

  beforeAll(async () => {
    redis = rawRedis();
    for (let n = 0; n < 5; n++) await redis.xadd(keys.stream('au.src'), '*', 'pattern', 'au.src', 'data', JSON.stringify({ n }));
  });

  afterAll(async () => {
    for (const c of closers) await c.close();
    await cleanupPrefix(redis, prefix);
    redis.disconnect();
  });

  it('records dead-letter redrive, purge and delete with the actor of the options and the counts', async () => {
    const deadLetters = new DeadLetterManager(config());
    closers.push(deadLetters);
    for (const [n, name] of [[1, 'TimeoutError'], [2, 'TypeError'], [3, 'TypeError'], [4, 'TypeError'], [5, 'RangeError']] as const) await seedLetter(n, name);
    await deadLetters.redrive('au.orders', { errorName: 'TimeoutError' }, { correlationId: 'redrive-1' });
    await deadLetters.purge('au.orders', { errorName: 'TypeError' }, { correlationId: 'purge-1', actor: 'ops-bob' });
    const [left] = await deadLetters.list('au.orders', { limit: 1 });
    await deadLetters.delete('au.orders', [left.dlqId], { correlationId: 'delete-1' });

    expect(await find('redrive-1')).toMatchObject({
      actor: 'ops-alice', action: 'dlq.redrive', target: { pattern: 'au.orders' }, params: { errorName: 'TimeoutError' }, result: 'ok', counts: { redriven: 1, skipped: 0 },
    });
    expect(await find('purge-1')).toMatchObject({ actor: 'ops-bob', action: 'dlq.purge', result: 'ok', counts: { deleted: 3 } });
    expect(await find('delete-1')).toMatchObject({ action: 'dlq.delete', params: { dlqIds: [left.dlqId] }, counts: { deleted: 1 } });
    const record = await find('redrive-1');
    expect(record.at).toBeGreaterThan(Date.now() - 60_000);
    expect(record.durationMs).toBeGreaterThanOrEqual(0);
  });

  it('records replays and group resets, and a refused replay as an error', async () => {
    const replay = new ReplayManager(config());
    closers.push(replay);
    await replay.replayMessages({ streamName: 'au.src', target: { stream: 'au.copy' } }, { correlationId: 'replay-1' });
    await replay.replayMessages({ streamName: 'au.src', target: { resetGroup: 'billing' }, startTime: 0 }, { correlationId: 'reset-1' });
    await expect(replay.replayMessages({ streamName: 'au.src', target: { stream: 'au.src' } }, { correlationId: 'replay-bad' })).rejects.toThrow(/also a source/);

    expect(await find('replay-1')).toMatchObject({ action: 'replay.stream', target: { patterns: ['au.src'], stream: 'au.copy' }, result: 'ok', counts: { replayed: 5 } });
    expect(await find('reset-1')).toMatchObject({ action: 'replay.reset-group', target: { patterns: ['au.src'], resetGroup: 'billing' }, params: { startTime: 0 }, result: 'ok' });
    expect(await find('replay-bad')).toMatchObject({ action: 'replay.stream', result: 'error', error: expect.stringMatching(/^ReplayRangeError: .*also a source/), counts: {} });
  });

  it('records partition rescales (and a refused one) and schema registrations and deletions, with an actor function asked per action', async () => {
    let asked = 0;
    const actor = () => `sso:user-${++asked}`;
    const fixed = new PartitioningManager(config({ partitioning: { enabled: true, strategy: 'hash', partitionCount: 2 }, compliance: { actor } }));
    const dynamic = new PartitioningManager(config({ partitioning: { enabled: true, strategy: 'dynamic', partitionCount: 2 }, compliance: { actor } }));
    const schemas = new SchemaManager(config({ schema: { enabled: true, compatibilityCheck: true }, compliance: { actor } }));
    closers.push(fixed, dynamic, schemas);
    await expect(fixed.scalePartitions('au.parts', 4, ['svc'], { correlationId: 'scale-bad' })).rejects.toThrow(/only change with partitioning.strategy 'dynamic'/);
    await dynamic.scalePartitions('au.parts', 3, ['svc'], { correlationId: 'scale-1' });
    await schemas.registerSchema('au.event', z.object({ id: z.string() }), '1.0.0', 'backward', { correlationId: 'schema-1' });
    await expect(schemas.registerSchema('au.event', z.object({ id: z.number() }), '1.0.0', 'backward', { correlationId: 'schema-bad' })).rejects.toThrow(/immutable/);
    await schemas.deleteVersion('au.event', '1.0.0', { correlationId: 'schema-del' });

    expect(await find('scale-bad')).toMatchObject({ actor: 'sso:user-1', action: 'partitions.scale', result: 'error', error: expect.stringMatching(/PartitionScaleError/) });
    expect(await find('scale-1')).toMatchObject({ actor: 'sso:user-2', target: { pattern: 'au.parts', groups: ['svc'] }, params: { partitionCount: 3 }, result: 'ok', counts: { partitions: 3 } });
    expect(await find('schema-1')).toMatchObject({ actor: 'sso:user-3', action: 'schema.register', target: { eventType: 'au.event' }, params: { version: '1.0.0', compatibility: 'backward' }, result: 'ok' });
    expect(await find('schema-bad')).toMatchObject({ action: 'schema.register', result: 'error', error: expect.stringMatching(/SchemaRegistrationError/) });
    expect(await find('schema-del')).toMatchObject({ action: 'schema.delete', result: 'ok', counts: { deleted: 1 } });
    expect(asked).toBe(5);
  });

  it('records nothing with compliance.audit.enabled false', async () => {
    const quiet = new DeadLetterManager(config({ compliance: { audit: { enabled: false } } }));
    closers.push(quiet);
    const before = await redis.xlen(keys.audit());
    await quiet.purge('au.quiet', {}, { correlationId: 'quiet-1' });
    expect(await redis.xlen(keys.audit())).toBe(before);
  });

  it('drops records older than compliance.audit.retentionMs when the next one is written', async () => {
    const agedPrefix = uniquePrefix('audit-aged'); // a trail of its own: the old record must be its first entry
    const agedKeys = testKeys(agedPrefix);
    const aged = new DeadLetterManager(testConfig(agedPrefix, { compliance: { audit: { retentionMs: 60_000 } } }));
    closers.push(aged);
    try {
      const old = await redis.xadd(agedKeys.audit(), `${Date.now() - 3_600_000}-0`, 'actor', 'old', 'action', 'dlq.purge', 'result', 'ok');
      await aged.purge('au.aged', {}, { correlationId: 'aged-1' });
      const left = await redis.xrange(agedKeys.audit(), '-', '+');
      expect(left.map(([id]) => id)).not.toContain(old);
      expect(left).toHaveLength(1);
      expect(left[0][1]).toEqual(expect.arrayContaining(['cid', 'aged-1']));
    } finally {
      await cleanupPrefix(redis, agedPrefix);
    }
  });

  it('the CLI records its --actor (default: the OS user) and exports the trail as JSON lines and CSV, hostile values neutralised', async () => {
    expect((await cli(['--prefix', prefix, '--actor', HOSTILE_ACTOR, 'dlq', 'purge', '--pattern', HOSTILE_PATTERN, '--yes'])).code).toBe(0);
    expect((await cli(['--prefix', prefix, 'dlq', 'purge', '--pattern', 'au.default-actor', '--yes'])).code).toBe(0);
    const all = await trail().read({ count: 1_000 });
    expect(all.at(-1)).toMatchObject({ actor: osUser(), target: { pattern: 'au.default-actor' } });
    const hostile = all.at(-2)!;
    expect(hostile).toMatchObject({ actor: HOSTILE_ACTOR, action: 'dlq.purge', target: { pattern: HOSTILE_PATTERN.replace('\n', '\\n') } });

    const jsonl = await cli(['--prefix', prefix, 'audit', 'export', '--format', 'jsonl']);
    expect(jsonl.code).toBe(0);
    const lines = jsonl.stdout.trimEnd().split('\n');
    expect(lines).toHaveLength(all.length);
    const parsed = lines.map((l) => JSON.parse(l) as AuditEntry & { time: string });
    expect(parsed.map((e) => e.id)).toEqual(all.map((e) => e.id));
    expect(parsed.at(-2)).toMatchObject({ actor: HOSTILE_ACTOR, target: hostile.target, time: new Date(hostile.at).toISOString() });

    const csv = await cli(['--prefix', prefix, 'audit', 'export', '--format', 'csv']);
    expect(csv.code).toBe(0);
    const rows = parseCsv(csv.stdout);
    expect(rows[0]).toEqual(['id', 'time', 'actor', 'action', 'target', 'params', 'result', 'error', 'counts', 'durationMs', 'correlationId']);
    expect(rows).toHaveLength(all.length + 1);
    for (const row of rows) expect(row).toHaveLength(11);
    const hostileRow = rows.find((r) => r[0] === hostile.id)!;
    expect(hostileRow[2]).toBe(`'${HOSTILE_ACTOR}`); // a spreadsheet shows the text instead of running the formula
    expect(JSON.parse(hostileRow[4])).toEqual(hostile.target);
    for (const cell of rows.flat()) expect(cell).not.toMatch(/^[=+\-@]/);

    // --since / --until select by the time of the record.
    const sinceMs = Number(hostile.id.split('-')[0]);
    const since = await cli(['--prefix', prefix, 'audit', 'export', '--since', String(sinceMs)]);
    const expected = all.filter((e) => Number(e.id.split('-')[0]) >= sinceMs).map((e) => e.id);
    expect(expected.slice(-2)).toEqual(all.slice(-2).map((e) => e.id));
    expect(since.stdout.trimEnd().split('\n').map((l) => (JSON.parse(l) as AuditEntry).id)).toEqual(expected);
    const until = await cli(['--prefix', prefix, 'audit', 'export', '--until', '0']);
    expect(until.stdout).toBe('');
    expect((await cli(['--prefix', prefix, 'audit', 'export', '--format', 'xml'])).stderr).toMatch(/'jsonl' or 'csv'/);
  });
});
