import { Controller, Inject, Injectable, type INestMicroservice } from '@nestjs/common';
import { Payload } from '@nestjs/microservices';
import { createHash, randomBytes } from 'node:crypto';
import { lastValueFrom } from 'rxjs';
import {
  AuditTrail,
  ComplianceManager,
  DeadLetterManager,
  RedisStreamsClient,
  RedisStreamsRecordBuilder,
  ReplayManager,
  StreamEvent,
  type RedisStreamsEnterpriseConfig,
} from 'nestjs-redis-streams-enterprise';
import { runCli } from '../../libs/redis-streams-enterprise/src/cli/program.js';
import { startConsumer, testConfig } from '../support/nest-apps.js';
import { cleanupPrefix, keysMatching, onCluster, rawRedis, redisUrl, uniquePrefix, type RawRedis } from '../support/redis.js';
import { testKeys } from '../support/keys.js';
import { waitFor } from '../support/wait-for.js';

const A = 'cust-A';
const B = 'cust-B';
const DAY = 86_400_000;
const KEY = randomBytes(32).toString('base64');
/** The command line connects to one server (--url): its cases run in the "redis" project only. */
const cliIt = onCluster() ? it.skip : it;

interface Order {
  n: number;
  customer: { id: string };
  notes: string;
  fail?: boolean;
}

@Injectable()
class Handled {
  readonly orders: number[] = [];
  readonly tagged: number[] = [];
}

@Controller()
class GdprController {
  constructor(@Inject(Handled) private readonly handled: Handled) {}

  @StreamEvent('gdpr.orders')
  order(@Payload() data: Order) {
    if (data.fail) throw new Error(`order ${data.n} refused`);
    this.handled.orders.push(data.n);
  }

  @StreamEvent('gdpr.tagged')
  tagged(@Payload() data: { n: number }) {
    this.handled.tagged.push(data.n);
  }
}

async function cli(argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await runCli(argv, { stdout: { write: (t: string) => (stdout += t) }, stderr: { write: (t: string) => (stderr += t) }, env: { REDIS_URL: redisUrl() } });
  return { code, stdout, stderr };
}

describe('compliance: erasure by subject and the retention report (real Redis)', () => {
  const prefix = uniquePrefix('gdpr');
  const keys = testKeys(prefix);
  const handled = new Handled();
  const config: RedisStreamsEnterpriseConfig = testConfig(prefix, {
    partitioning: { enabled: true, strategy: 'hash', partitionCount: 2, partitionKey: 'n' },
    streams: { claimCheckThresholdBytes: 1_024 },
    encryption: { enabled: true, keys: [{ id: 'k1', key: KEY }] },
    replay: { enabled: true },
    compliance: {
      actor: 'dpo@example.test',
      subjects: { 'gdpr.orders': { field: 'customer.id' }, 'gdpr.legacy': { field: 'customer.id' }, 'gdpr.t*': { header: 'x-subject' } },
    },
  });
  let redis: RawRedis;
  let app: INestMicroservice;
  let client: RedisStreamsClient;
  let compliance: ComplianceManager;
  let deadLetters: DeadLetterManager;
  const managers: { close(): Promise<void> }[] = [];
  const subjectOf = (n: number) => (n % 2 === 1 ? A : B);
  const pendingOf = async (group: string) => {
    let total = 0;
    for (let p = 0; p < 2; p++) total += Number(((await redis.xpending(keys.partition('gdpr.orders', p), group)) as unknown[])[0]);
    return total;
  };

  beforeAll(async () => {
    redis = rawRedis();
    ({ app, client } = await startConsumer(config, [GdprController], [{ provide: Handled, useValue: handled }]));
    compliance = new ComplianceManager(config);
    deadLetters = new DeadLetterManager(config);
    const replay = new ReplayManager(config);
    managers.push(compliance, deadLetters, replay);
    // 12 orders (odd n: subject A), two of them claim-checked (n 2 and 3), two dead-lettered (n 4 and 5).
    for (let n = 0; n < 12; n++) {
      const order: Order = { n, customer: { id: subjectOf(n) }, notes: n === 2 || n === 3 ? 'x'.repeat(3_000) : '', ...(n === 4 || n === 5 ? { fail: true } : {}) };
      await lastValueFrom(client.emit('gdpr.orders', order));
    }
    for (let n = 0; n < 4; n++) {
      await lastValueFrom(client.emit('gdpr.tagged', new RedisStreamsRecordBuilder({ n }).setHeaders({ 'x-subject': subjectOf(n) }).build()));
    }
    // Entries written by another producer in clear text (encryption on or not, the erasure reads them).
    for (const subject of [A, B]) {
      await redis.xadd(keys.stream('gdpr.legacy'), '*', 'pattern', 'gdpr.legacy', 'data', JSON.stringify({ customer: { id: subject } }));
    }
    await waitFor(() => handled.orders.length === 10 && handled.tagged.length === 4, { message: 'the live messages handled' });
    await waitFor(async () => (await deadLetters.count('gdpr.orders')) === 2, { message: 'two dead letters' });
    const copied = await replay.replayMessages({ streamName: 'gdpr.orders', target: { stream: 'gdpr.copy' } });
    expect(copied.replayed).toBe(12);
    // A group whose consumer read every order and died: its pending entries point at the entries erased below.
    for (let p = 0; p < 2; p++) {
      const stream = keys.partition('gdpr.orders', p);
      await redis.xgroup('CREATE', stream, 'laggard', '0');
      await redis.xreadgroup('GROUP', 'laggard', 'dead-consumer', 'COUNT', 100, 'STREAMS', stream, '>');
    }
  }, 30_000);

  afterAll(async () => {
    await app?.close();
    for (const m of managers) await m.close();
    await cleanupPrefix(redis, prefix);
    redis.disconnect();
  });

  it('a dry run finds the subject in live partitions, dead letters, replay copies, headers and clear-text entries, and deletes nothing', async () => {
    const report = await compliance.erase({ subject: A, dryRun: true });
    // live: 6 orders + 2 tagged + 1 legacy; dead letters: order 5; replay copies: 6
    expect(report.totals).toEqual({ matched: 16, deleted: 0, replayCopies: 6, pendingAcked: 0, blobsDeleted: 0 });
    expect(report.unreadableCount).toBe(0);
    expect(report.verification).toBeNull();
    const matchedIn = (pick: (stream: string, kind: string) => boolean) =>
      report.streams.filter((s) => pick(s.stream, s.kind)).reduce((n, s) => n + s.matched, 0);
    const partitions = (pattern: string) => [0, 1].map((p) => keys.partition(pattern, p));
    expect(matchedIn((stream, kind) => kind === 'live' && partitions('gdpr.orders').includes(stream))).toBe(6);
    expect(matchedIn((stream, kind) => kind === 'dead-letter' && partitions('gdpr.orders').map((p) => keys.deadLetterOf(p)).includes(stream))).toBe(1);
    expect(matchedIn((stream) => partitions('gdpr.tagged').includes(stream))).toBe(2);
    expect(report.streams.find((s) => s.stream === keys.stream('gdpr.copy'))).toMatchObject({ matched: 6, replayCopies: 6 });
    expect(matchedIn((stream) => stream === keys.stream('gdpr.legacy'))).toBe(1);
    expect((await compliance.erase({ subject: B, dryRun: true })).totals.matched).toBe(16);
  });

  it('erases every entry of the subject (live, partitions, dead letters, replay copies, blobs), acks pending entries, proves it by a scan, and leaves others alone', async () => {
    const blobsBefore = await keysMatching(redis, `${prefix}:*:blob:*`);
    expect(blobsBefore).toHaveLength(2);
    expect(await pendingOf('laggard')).toBe(12);

    const report = await compliance.erase({ subject: A }, { correlationId: 'ticket-4711' });

    expect(report.totals).toEqual({ matched: 16, deleted: 16, replayCopies: 6, pendingAcked: 6, blobsDeleted: 1 });
    expect(report.verification).toEqual({ entriesScanned: expect.any(Number), remaining: 0, unreadableCount: 0, clean: true });
    expect(report.subjectSha256).toBe(createHash('sha256').update(A).digest('hex'));
    expect(JSON.stringify(report)).not.toContain(A);
    // Nothing of A is found any more, everything of B still is.
    expect((await compliance.erase({ subject: A, dryRun: true })).totals.matched).toBe(0);
    expect((await compliance.erase({ subject: B, dryRun: true })).totals.matched).toBe(16);
    expect(await keysMatching(redis, `${prefix}:*:blob:*`)).toHaveLength(1);
    // The dead consumer's pending entries of A were acknowledged; those of B are still pending.
    expect(await pendingOf('laggard')).toBe(6);
    expect(await deadLetters.count('gdpr.orders')).toBe(1);

    // The consumers keep running.
    await lastValueFrom(client.emit('gdpr.orders', { n: 100, customer: { id: B }, notes: '' }));
    await waitFor(() => handled.orders.includes(100), { message: 'a message after the erasure handled' });

    // Audited, with the subject hashed: the audit trail never holds it in clear.
    const [entry] = (await new AuditTrail(compliance.config, async () => redis).read({ count: 100 })).filter((e) => e.correlationId === 'ticket-4711');
    expect(entry).toMatchObject({ actor: 'dpo@example.test', action: 'compliance.erase', result: 'ok', params: { subjectSha256: report.subjectSha256, dryRun: false } });
    expect(entry.counts).toMatchObject({ matched: 16, deleted: 16, pendingAcked: 6, remaining: 0 });
    const raw = await redis.xrange(keys.audit(), '-', '+');
    expect(JSON.stringify(raw)).not.toContain(A);
  });

  it('refuses an empty subject, and the refusal is audited', async () => {
    await expect(compliance.erase({ subject: '' }, { correlationId: 'empty-subject' })).rejects.toThrow(/subject of 1-1024 characters/);
    const [entry] = (await compliance.auditTrail.read({ count: 100 })).filter((e) => e.correlationId === 'empty-subject');
    expect(entry).toMatchObject({ action: 'compliance.erase', result: 'error', error: expect.stringMatching(/InvalidUsageError: erase needs a subject/) });
  });

  cliIt('the CLI erases by subject with --field/--header for the named topics and prints the verification', async () => {
    const dry = await cli(['--prefix', prefix, '--json', 'erase', '--subject', B, '--topics', 'gdpr.legacy', '--field', 'customer.id', '--dry-run']);
    expect(dry.code).toBe(0);
    expect(JSON.parse(dry.stdout).totals.matched).toBe(1);
    const done = await cli(['--prefix', prefix, '--actor', 'cli-dpo', 'erase', '--subject', B, '--topics', 'gdpr.legacy', '--field', 'customer.id', '--yes']);
    expect(done.stderr).toBe('');
    expect(done.code).toBe(0);
    expect(done.stdout).toMatch(/Deleted 1 entry/);
    expect(done.stdout).toMatch(/Verification scan: 0 entries of the subject remain/);
    expect(done.stdout).not.toContain(B);
    expect(await redis.xlen(keys.stream('gdpr.legacy'))).toBe(0);
  });

  cliIt('the CLI opens encrypted topics with --keys-from-env; without the keys it lists their entries as unreadable and deletes nothing', async () => {
    const args = ['--prefix', prefix, '--json', 'erase', '--subject', B, '--topics', 'gdpr.orders', '--field', 'customer.id', '--dry-run'];
    const blind = JSON.parse((await cli(args)).stdout) as { totals: { matched: number }; unreadableCount: number; unreadable: { reason: string }[] };
    expect(blind.totals.matched).toBe(0);
    expect(blind.unreadable[0].reason).toMatch(/DecryptFailedError: the message is encrypted, but encryption is not enabled/);
    process.env.RSE_COMPLIANCE_TEST_KEYS = `k1:${KEY}`;
    try {
      const seeing = JSON.parse((await cli([...args, '--keys-from-env', 'RSE_COMPLIANCE_TEST_KEYS'])).stdout) as typeof blind;
      // B's orders (7 with the one sent after the erasure), its dead letter and the 6 replay copies
      expect(seeing.totals.matched).toBe(14);
      expect(seeing.unreadableCount).toBe(0);
      expect(blind.unreadableCount).toBe(14);
    } finally {
      delete process.env.RSE_COMPLIANCE_TEST_KEYS;
    }
  });
});

describe('retention report (real Redis)', () => {
  const prefix = uniquePrefix('retention-report');
  const keys = testKeys(prefix);
  let redis: RawRedis;
  let compliance: ComplianceManager;
  const stream = keys.stream('rr.topic');
  const now = Date.now();

  beforeAll(async () => {
    redis = rawRedis();
    compliance = new ComplianceManager(testConfig(prefix, { streams: { maxLen: 1_000, trimming: 'hard' } }));
    // 10 entries; group g reads 3 of them; trimming to 5 then deletes 5, of which 2 the group never read.
    await redis.xgroup('CREATE', stream, 'g', '0', 'MKSTREAM');
    for (let n = 1; n <= 10; n++) await redis.xadd(stream, `${now - 60_000 + n}-0`, 'data', JSON.stringify({ n }));
    const read = (await redis.xreadgroup('GROUP', 'g', 'c', 'COUNT', 3, 'STREAMS', stream, '>')) as [string, [string, string[]][]][];
    await redis.xack(stream, 'g', ...read[0][1].map(([id]) => id));
    await redis.xtrim(stream, 'MAXLEN', 5);
    // Dead letters: three from 40 days ago, two recent.
    for (let n = 1; n <= 3; n++) await redis.xadd(keys.deadLetter('rr.topic'), `${now - 40 * DAY + n}-0`, 'pattern', 'rr.topic');
    for (let n = 1; n <= 2; n++) await redis.xadd(keys.deadLetter('rr.topic'), `${now - 1_000 + n}-0`, 'pattern', 'rr.topic');
  });

  afterAll(async () => {
    await compliance?.close();
    await cleanupPrefix(redis, prefix);
    redis.disconnect();
  });

  it('reports length, oldest entry, entries lost to trimming per group and dead letters older than N days', async () => {
    const report = await compliance.retentionReport({ deadLetterOlderThanDays: 30 });
    expect(report.policy).toEqual({ maxLen: 1_000, retentionMs: null, trimming: 'hard', deadLetterMaxLen: 100_000 });
    expect(report.streams).toHaveLength(1);
    expect(report.streams[0]).toMatchObject({
      stream,
      pattern: 'rr.topic',
      length: 5,
      oldestId: `${now - 60_000 + 6}-0`,
      oldestAt: new Date(now - 60_000 + 6).toISOString(),
      entriesAdded: 10,
      entriesRemoved: 5,
      lossCountExact: true,
      groups: [{ group: 'g', pending: 0, lag: expect.any(Number), lostToTrimming: 2, pendingWithoutData: 0 }],
      deadLetters: { stream: keys.deadLetter('rr.topic'), length: 5, olderThanLimit: 3, oldestAt: new Date(now - 40 * DAY + 1).toISOString() },
    });
    expect((await compliance.retentionReport({ deadLetterOlderThanDays: 50 })).streams[0].deadLetters.olderThanLimit).toBe(0);
    expect((await compliance.retentionReport({ topics: ['other.*'] })).streams).toHaveLength(0);
  });

  cliIt('the CLI prints the report as a table and as JSON', async () => {
    const json = await cli(['--prefix', prefix, '--json', 'report', 'retention', '--dlq-older-than-days', '30', '--max-len', '1000', '--trimming', 'hard']);
    expect(json.stderr).toBe('');
    const parsed = JSON.parse(json.stdout);
    expect(parsed.streams[0]).toMatchObject({ length: 5, entriesRemoved: 5, groups: [{ group: 'g', lostToTrimming: 2 }], deadLetters: { olderThanLimit: 3 } });
    const text = await cli(['--prefix', prefix, 'report', 'retention', '--dlq-older-than-days', '30']);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/rr\.topic/);
    expect(text.stdout).toMatch(/lost to trimming: g 2/);
  });
});
