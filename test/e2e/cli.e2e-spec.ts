import { Controller, Inject, Injectable, Logger, type INestMicroservice } from '@nestjs/common';
import { Payload } from '@nestjs/microservices';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { lastValueFrom } from 'rxjs';
import { RedisStreamsClient, StreamEvent } from 'nestjs-redis-streams-enterprise';
import { runCli } from '../../libs/redis-streams-enterprise/src/cli/program.js';
import { startConsumer, testConfig } from '../support/nest-apps.js';
import { cleanupPrefix, rawRedis, redisUrl, uniquePrefix, type RawRedis } from '../support/redis.js';
import { testKeys } from '../support/keys.js';
import { waitFor } from '../support/wait-for.js';

const T0 = 1_700_000_000_000; // seeded entries have explicit ids: entry n is written at T0 + n seconds
const COUNT = 400;
const SOURCE = 'shop.orders';
/** Every third message is a cancellation, the others are creations (the --filter glob selects creations). */
const patternOf = (n: number) => (n % 3 === 0 ? 'shop.orders.cancelled' : 'shop.orders.created');
const BIN = fileURLToPath(new URL('../../libs/redis-streams-enterprise/dist/cli/main.js', import.meta.url));

interface CliOutcome {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs the CLI in-process with captured output (stderr may pose as a terminal, to draw the progress bar). */
async function cli(argv: string[], options: { tty?: boolean; onInterrupt?: (handler: () => void) => () => void } = {}): Promise<CliOutcome> {
  let stdout = '';
  let stderr = '';
  const code = await runCli(argv, {
    stdout: { write: (text: string) => (stdout += text) },
    stderr: { write: (text: string) => (stderr += text), isTTY: options.tty === true, columns: 160 },
    env: { REDIS_URL: redisUrl() },
    onInterrupt: options.onInterrupt,
  });
  return { code, stdout, stderr };
}

/** Runs the CLI and parses its --json output; fails with the CLI's stderr when it did not succeed. */
async function cliJson<T>(argv: string[]): Promise<T> {
  const out = await cli(['--json', ...argv]);
  if (out.code !== 0) throw new Error(`exit ${out.code}: ${out.stderr}`);
  return JSON.parse(out.stdout) as T;
}

function run(file: string, args: string[]): Promise<CliOutcome & { ms: number }> {
  const started = Date.now();
  return new Promise((resolve) => {
    execFile(process.execPath, [file, ...args], { env: { ...process.env, REDIS_URL: redisUrl() }, timeout: 15_000 }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : -1) : 0;
      resolve({ code, stdout, stderr, ms: Date.now() - started });
    });
  });
}

const noStack = (text: string) => expect(text).not.toMatch(/\n\s+at .+:\d+:\d+/);

@Injectable()
class Payments {
  fixed = false;
  readonly handled: number[] = [];
}

@Controller()
class PaymentsController {
  constructor(@Inject(Payments) private readonly payments: Payments) {}

  @StreamEvent('cli.pay')
  pay(@Payload() data: { n: number }) {
    if (!this.payments.fixed) throw new TypeError(`card declined ${data.n}`);
    this.payments.handled.push(data.n);
  }
}

describe('operator CLI (real Redis)', () => {
  const prefix = uniquePrefix('cli');
  const keys = testKeys(prefix);
  const source = keys.stream(SOURCE);
  let redis: RawRedis;
  const p = (...argv: string[]) => ['--prefix', prefix, ...argv];

  beforeAll(async () => {
    Logger.overrideLogger(['error']); // the managers' lifecycle logs would only clutter the test output
    redis = rawRedis();
    const pipeline = redis.pipeline();
    for (let n = 0; n < COUNT; n++) {
      pipeline.xadd(source, `${T0 + n * 1_000}-0`, 'v', '1', 'pattern', patternOf(n), 'id', `m-${n}`, 'data', JSON.stringify({ n }));
    }
    await pipeline.exec();
  });

  afterAll(async () => {
    await cleanupPrefix(redis, prefix);
    redis.disconnect();
  });

  const keysUnderPrefix = async () => (await redis.keys(keys.allKeysGlob())).sort();
  const copiedNs = async (pattern: string) =>
    (await redis.xrange(keys.stream(pattern), '-', '+')).map(([, f]) => (JSON.parse(f[f.indexOf('data') + 1]) as { n: number }).n);
  /** n of the seeded entries from `from` to `to` (seconds after T0, inclusive), creations only if `created`. */
  const selected = (from: number, to: number, created: boolean) =>
    Array.from({ length: COUNT }, (_, n) => n).filter((n) => n >= from && n <= to && (!created || patternOf(n) === 'shop.orders.created'));

  describe('usage and errors', () => {
    it('--help lists the commands; unknown options, bad dates, missing targets and an unreachable Redis exit 1 with one clear line', async () => {
      const help = await cli(['--help']);
      expect(help.code).toBe(0);
      expect(help.stdout).toMatch(/Usage: nestjs-redis-streams-enterprise/);
      expect(help.stdout).toMatch(/replay/);
      expect(help.stdout).toMatch(/dlq/);
      expect((await cli(['replay', '--help'])).stdout).toMatch(/not available\s+from the command line/);

      const unknown = await cli(p('dlq', 'list', '--pattern', 'x', '--bogus'));
      expect(unknown).toMatchObject({ code: 1, stdout: '' });
      expect(unknown.stderr).toMatch(/unknown option '--bogus'/);

      const badDate = await cli(p('replay', '--stream', SOURCE, '--from', 'yesterday', '--to-stream', 'x'));
      expect(badDate.code).toBe(1);
      expect(badDate.stderr).toMatch(/'--from <iso\|ms>' argument 'yesterday' is invalid\. expected an ISO 8601 time/);

      const noTarget = await cli(p('replay', '--stream', SOURCE));
      expect(noTarget.code).toBe(1);
      expect(noTarget.stderr).toMatch(/replay needs a target: --to-stream <pattern> \(copy\) or --reset-group <group>/);

      const both = await cli(p('replay', '--stream', SOURCE, '--to-stream', 'x', '--reset-group', 'g'));
      expect(both.code).toBe(1);
      expect(both.stderr).toMatch(/'--to-stream <pattern>' cannot be used with option '--reset-group <group>'/);

      const intoItself = await cli(p('replay', '--stream', SOURCE, '--to-stream', SOURCE));
      expect(intoItself.code).toBe(1);
      expect(intoItself.stderr).toMatch(/is also a --stream source/);

      const reversed = await cli(p('replay', '--stream', SOURCE, '--from', String(T0 + 10_000), '--to', String(T0), '--to-stream', 'x'));
      expect(reversed.code).toBe(1);
      expect(reversed.stderr).toMatch(/^error: Invalid replay request: the range starts .* after it ends/);

      const badUrl = await cli(['--url', 'http://example.com', 'dlq', 'patterns']);
      expect(badUrl.code).toBe(1);
      expect(badUrl.stderr).toBe('error: --url must be a redis:// or rediss:// URL\n');

      for (const argv of [['dlq', 'count', '--pattern', 'x'], ['replay', '--stream', SOURCE, '--to-stream', 'x']]) {
        const down = await cli(['--url', 'redis://127.0.0.1:1', ...argv]);
        expect(down.code).toBe(1);
        expect(down.stderr).toMatch(/^error: Cannot connect to Redis at redis:\/\/127\.0\.0\.1:1 \(.*ECONNREFUSED.*\).*pass --url or set REDIS_URL\)\n$/);
        noStack(down.stderr);
      }
      const downJson = await cli(['--json', '--url', 'redis://127.0.0.1:1', 'dlq', 'patterns']);
      expect(JSON.parse(downJson.stderr)).toMatchObject({ error: { name: 'ConnectionFailedError', code: 'CONNECTION_FAILED' } });
      // Nothing above wrote anything but the audit trail's record of the refused replay (failures are audited too).
      expect(await keysUnderPrefix()).toEqual([keys.audit(), source]);
      const audited = await redis.xrange(keys.audit(), '-', '+');
      expect(audited.map(([, fields]) => fields[fields.indexOf('result') + 1])).toEqual(['error']);
    });
  });

  describe('replay', () => {
    it('--dry-run prints the right count and the first 20 entries, and writes nothing', async () => {
      const expected = selected(50, 249, true);
      const args = p('replay', '--stream', SOURCE, '--from', new Date(T0 + 50_000).toISOString(), '--to', String(T0 + 249_000), '--filter', 'shop.*.created', '--to-stream', 'dry.copy', '--dry-run');
      const human = await cli(args);
      expect(human.code).toBe(0);
      expect(human.stdout).toContain(`Dry run: would replay ${expected.length} messages of "${SOURCE}" into the stream of "dry.copy" (nothing was written)`);
      for (const n of expected.slice(0, 20)) expect(human.stdout).toContain(`${T0 + n * 1_000}-0  ${new Date(T0 + n * 1_000).toISOString()}  shop.orders.created  m-${n}`);
      expect(human.stdout).not.toContain(`m-${expected[20]}\n`);
      expect(human.stdout).toContain(`… and ${expected.length - 20} more`);
      expect(human.stdout).toMatch(/scanned\s+200\n/);

      const json = await cliJson<{ replayed: number; skipped: number; dryRun: boolean; firstId: string; lastId: string; sample: { entryId: string; pattern: string }[] }>(args);
      expect(json).toMatchObject({ replayed: expected.length, skipped: 200 - expected.length, dryRun: true });
      expect(json.firstId).toBe(`${T0 + expected[0] * 1_000}-0`);
      expect(json.lastId).toBe(`${T0 + expected[expected.length - 1] * 1_000}-0`);
      expect(json.sample.map((s) => s.entryId)).toEqual(expected.slice(0, 20).map((n) => `${T0 + n * 1_000}-0`));

      const reset = await cliJson<{ replayed: number; firstId: string }>(p('replay', '--stream', SOURCE, '--start-id', `${T0 + 300_000}-0`, '--reset-group', 'dry', '--dry-run'));
      expect(reset).toMatchObject({ replayed: COUNT - 300, firstId: `${T0 + 300_000}-0` });
      expect(await redis.xinfo('GROUPS', source)).toEqual([]); // the group was not created
      expect(await keysUnderPrefix()).toEqual([keys.audit(), source]); // a dry run is not audited: it changes nothing
    });

    it('--to-stream copies exactly the entries of the time range that match --filter, and a second run adds nothing', async () => {
      const expected = selected(100, 299, true);
      const args = p('replay', '--stream', SOURCE, '--from', String(T0 + 100_000), '--to', new Date(T0 + 299_000).toISOString(), '--filter', 'shop.*.created', '--to-stream', 'orders.copy');
      const first = await cli(args);
      expect(first.code).toBe(0);
      expect(first.stderr).toBe(''); // not a terminal: no progress bar, only the result on stdout
      expect(first.stdout).toContain(`Replayed ${expected.length} messages of "${SOURCE}" into the stream of "orders.copy"`);
      expect(first.stdout).toMatch(/stopped by end of the range/);
      expect(await copiedNs('orders.copy')).toEqual(expected);
      const [, fields] = (await redis.xrange(keys.stream('orders.copy'), '-', '+', 'COUNT', 1))[0];
      expect(fields).toEqual(expect.arrayContaining(['pattern', 'shop.orders.created', 'id', `m-${expected[0]}`]));

      const again = await cli(args);
      expect(again.code).toBe(0);
      expect(await copiedNs('orders.copy')).toEqual(expected); // no duplicates
    });

    it('--max bounds a copy; --stream takes several patterns, merged in time order', async () => {
      const other = keys.stream('shop.refunds');
      await redis.xadd(other, `${T0 + 10_500}-0`, 'v', '1', 'pattern', 'shop.refunds', 'id', 'r-1', 'data', JSON.stringify({ n: 10.5 }));
      const out = await cliJson<{ replayed: number; stoppedBy: string }>(
        p('replay', '--stream', SOURCE, 'shop.refunds', '--from', String(T0 + 10_000), '--max', '3', '--to-stream', 'merged'),
      );
      expect(out).toMatchObject({ replayed: 3, stoppedBy: 'maxMessages' });
      expect(await copiedNs('merged')).toEqual([10, 10.5, 11]);
    });

    it('exit codes of a replay: 0 when it stopped at the --max asked for, 1 when --timeout-ms ran out first', async () => {
      const big = keys.stream('shop.big');
      const pipeline = redis.pipeline();
      for (let n = 0; n < 5_000; n++) pipeline.xadd(big, '*', 'v', '1', 'pattern', 'shop.big', 'id', `b-${n}`, 'data', JSON.stringify({ n }));
      await pipeline.exec();
      const capped = await cli(p('--json', 'replay', '--stream', 'shop.big', '--max', '10', '--to-stream', 'big.capped'));
      expect(capped.code).toBe(0);
      expect(JSON.parse(capped.stdout)).toMatchObject({ stoppedBy: 'maxMessages', replayed: 10 });
      // 5,000 entries take far longer than 1 ms to read and copy: the time limit ends it, which is a failure (exit 1).
      const timedOut = await cli(p('--json', 'replay', '--stream', 'shop.big', '--timeout-ms', '1', '--to-stream', 'big.timed'));
      expect(timedOut.code).toBe(1);
      expect(JSON.parse(timedOut.stdout)).toMatchObject({ stoppedBy: 'timeout' });
    });

    it('--reset-group positions a group so that XREADGROUP returns exactly the entries from --from on', async () => {
      // A new group is created at the position; an existing one (here at the end of the stream) is moved back.
      await redis.xgroup('CREATE', source, 'existing', '$');
      for (const group of ['fresh', 'existing']) {
        const out = await cli(p('replay', '--stream', SOURCE, '--from', String(T0 + 350_000), '--reset-group', group));
        expect(out.code).toBe(0);
        expect(out.stdout).toContain(`Reset group "${group}" of "${SOURCE}": it re-consumes from ${T0 + 350_000}-0 on; 50 entries in the range`);
        const read = (await redis.xreadgroup('GROUP', group, 'c1', 'COUNT', 1_000, 'STREAMS', source, '>')) as [string, [string, string[]][]][];
        const ids = read[0][1].map(([id]) => id);
        expect(ids).toEqual(Array.from({ length: 50 }, (_, i) => `${T0 + (350 + i) * 1_000}-0`));
      }
    });

    it('Ctrl-C cancels through the AbortController and prints the partial result (exit 130)', async () => {
      const out = await cli(p('--json', 'replay', '--stream', SOURCE, '--to-stream', 'cancelled'), {
        onInterrupt: (handler) => {
          handler(); // the operator presses Ctrl-C right away
          return () => undefined;
        },
      });
      expect(out.code).toBe(130);
      expect(JSON.parse(out.stdout)).toMatchObject({ stoppedBy: 'aborted', replayed: 0, dryRun: false });
      expect(await redis.exists(keys.stream('cancelled'))).toBe(0);
    });

    it('draws a progress bar on stderr when it is a terminal', async () => {
      const out = await cli(p('replay', '--stream', SOURCE, '--to-stream', 'with.bar'), { tty: true });
      expect(out.code).toBe(0);
      expect(out.stderr).toMatch(/replay \|.*\| \d+% \| \d+ scanned, \d+ replayed/);
      expect(await copiedNs('with.bar')).toHaveLength(COUNT);
    });
  });

  describe('dead letters', () => {
    let app: INestMicroservice;
    let client: RedisStreamsClient;
    let payments: Payments;
    const letters = 6;

    beforeAll(async () => {
      const config = testConfig(prefix, { consumer: { group: 'billing' }, retry: { attempts: 2 } });
      ({ app, client } = await startConsumer(config, [PaymentsController], [Payments]));
      payments = app.get(Payments);
      app.useLogger(false); // the dead-lettering below is intended; its error logs would only clutter the output
      for (let n = 0; n < letters; n++) await lastValueFrom(client.emit('cli.pay', { n }));
      await waitFor(async () => (await redis.xlen(keys.deadLetter('cli.pay'))) === letters, { timeoutMs: 15_000, message: 'the dead letters' });
    });

    afterAll(async () => {
      await client?.close();
      await app?.close();
    });

    it('patterns, count, list with filters, show', async () => {
      expect(await cliJson(p('dlq', 'patterns'))).toEqual([{ pattern: 'cli.pay', count: letters }]);
      expect(await cliJson(p('dlq', 'count', '--pattern', 'cli.pay'))).toEqual({ pattern: 'cli.pay', count: letters });

      const all = await cliJson<{ dlqId: string; reason: string; group: string; errorName: string; errorMessage: string; data: unknown }[]>(p('dlq', 'list', '--pattern', 'cli.pay'));
      expect(all).toHaveLength(letters);
      expect(all[0]).toMatchObject({ reason: 'max-deliveries', group: 'billing', errorName: 'TypeError', errorMessage: expect.stringMatching(/^card declined \d$/) });
      expect((await cliJson<unknown[]>(p('dlq', 'list', '--pattern', 'cli.pay', '--error-message', 'declined 3'))).length).toBe(1);
      expect((await cliJson<unknown[]>(p('dlq', 'list', '--pattern', 'cli.pay', '--limit', '2'))).length).toBe(2);
      expect(await cliJson(p('dlq', 'list', '--pattern', 'cli.pay', '--group', 'other'))).toEqual([]);
      expect(await cliJson(p('dlq', 'list', '--pattern', 'cli.pay', '--from', new Date(Date.now() + 60_000).toISOString()))).toEqual([]);

      const table = await cli(p('dlq', 'list', '--pattern', 'cli.pay', '--reason', 'max-deliveries'));
      expect(table.code).toBe(0);
      expect(table.stdout).toMatch(/^DLQ ID\s+DEAD-LETTERED\s+REASON\s+GROUP\s+TRIES\s+MESSAGE ID\s+ERROR\n/);
      expect(table.stdout).toContain(`${all[0].dlqId}  `);
      expect(table.stdout).toMatch(/TypeError: card declined 0\n/);
      expect(table.stdout).toMatch(/\n6 dead letters\n$/);

      const show = await cli(p('dlq', 'show', '--pattern', 'cli.pay', all[2].dlqId));
      expect(show.code).toBe(0);
      expect(show.stdout).toMatch(/reason\s+max-deliveries/);
      expect(show.stdout).toMatch(/group\s+billing \(consumer /);
      expect(show.stdout).toContain(JSON.stringify(all[2].data, null, 2));
      const missing = await cli(p('dlq', 'show', '--pattern', 'cli.pay', '1-0'));
      expect(missing).toMatchObject({ code: 1, stdout: '' });
      expect(missing.stderr).toMatch(/^error: No dead letter 1-0 of "cli.pay"/);
    });

    it('redrive: --dry-run lists and changes nothing; a redrive after the fix is handled once; repeating it redrives nothing', async () => {
      const dry = await cli(p('dlq', 'redrive', '--pattern', 'cli.pay', '--error-message', 'declined 1', '--dry-run'));
      expect(dry.code).toBe(0);
      expect(dry.stdout).toMatch(/^Dry run: would redrive 1 dead letter of "cli.pay" \(nothing was changed\)\n/);
      expect(dry.stdout).toContain('TypeError: card declined 1');
      expect(await redis.xlen(keys.deadLetter('cli.pay'))).toBe(letters);

      payments.fixed = true;
      const redrive = await cliJson<{ redriven: { dlqId: string; newId: string }[] }>(p('dlq', 'redrive', '--pattern', 'cli.pay', '--error-message', 'declined 1'));
      expect(redrive.redriven).toHaveLength(1);
      await waitFor(() => payments.handled.includes(1), { message: 'the redriven message' });
      expect(await cliJson(p('dlq', 'redrive', '--pattern', 'cli.pay', '--error-message', 'declined 1'))).toMatchObject({ redriven: [] });
      expect(payments.handled).toEqual([1]);
      expect(await cliJson(p('dlq', 'count', '--pattern', 'cli.pay'))).toEqual({ pattern: 'cli.pay', count: letters - 1 });
    });

    it('purge refuses without --yes, previews with --dry-run, deletes with --yes', async () => {
      const refused = await cli(p('dlq', 'purge', '--pattern', 'cli.pay', '--error-message', 'declined 2'));
      expect(refused.code).toBe(1);
      expect(refused.stderr).toMatch(/^error: Refusing to delete 1 dead letter of "cli.pay" without --yes \(nothing was deleted\)/);
      const dry = await cliJson<{ wouldDelete: number }>(p('dlq', 'purge', '--pattern', 'cli.pay', '--reason', 'max-deliveries', '--dry-run'));
      expect(dry.wouldDelete).toBe(letters - 1);
      expect(await redis.xlen(keys.deadLetter('cli.pay'))).toBe(letters - 1);

      const purged = await cli(p('dlq', 'purge', '--pattern', 'cli.pay', '--error-message', 'declined 2', '--yes'));
      expect(purged).toMatchObject({ code: 0, stdout: 'Deleted 1 dead letter of "cli.pay"\n' });
      const left = await cliJson<{ errorMessage: string }[]>(p('dlq', 'list', '--pattern', 'cli.pay'));
      expect(left.map((l) => l.errorMessage).sort()).toEqual(['card declined 0', 'card declined 3', 'card declined 4', 'card declined 5']);
    });

    it('the built bin runs as a child process: --help, a real command, and a clean exit 1 when Redis is down', async () => {
      const help = await run(BIN, ['--help']);
      expect(help.code).toBe(0);
      expect(help.stdout).toMatch(/^Usage: nestjs-redis-streams-enterprise \[options\] \[command\]/);

      const count = await run(BIN, ['--prefix', prefix, '--json', 'dlq', 'count', '--pattern', 'cli.pay']);
      expect(count).toMatchObject({ code: 0, stderr: '' });
      expect(JSON.parse(count.stdout)).toEqual({ pattern: 'cli.pay', count: letters - 2 });

      const down = await run(BIN, ['--url', 'redis://127.0.0.1:1', 'dlq', 'patterns']);
      expect(down.code).toBe(1);
      expect(down.stderr).toMatch(/^error: Cannot connect to Redis at redis:\/\/127\.0\.0\.1:1/);
      noStack(down.stderr);
      expect(down.ms).toBeLessThan(5_000); // closed its connections and exited by itself
    });
  });
});
