/**
 * Log safety and structure (issue 15): entries written with a raw XADD whose pattern and header name carry a newline
 * and ANSI escapes are dead-lettered, and the log output (Nest's ConsoleLogger, text) has no raw newline or escape
 * from them: no forged log line, no repainted terminal. The same log calls hand JSON loggers their fields (stream,
 * group, entryId, reason, error) as an object after the message.
 */
import { ConsoleLogger, Controller, type INestMicroservice, type LoggerService } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { Redis } from 'ioredis';
import { Payload } from '@nestjs/microservices';
import { lastValueFrom } from 'rxjs';
import {
  RedisStreamsClient,
  RedisStreamsEnterpriseModule,
  RedisStreamsExceptionFilter,
  RedisStreamsServer,
  StreamEvent,
  StreamMessage,
} from 'nestjs-redis-streams-enterprise';
import { testConfig } from '../support/nest-apps.js';
import { testKeys } from '../support/keys.js';
import { cleanupPrefix, redisUrl, uniquePrefix } from '../support/redis.js';
import { waitFor } from '../support/wait-for.js';

@Controller()
class SafeController {
  @StreamEvent('log.safe')
  safe() {}

  /** Throws an error quoting the request: its message and stack reach the log. */
  @StreamMessage('log.ask')
  ask(@Payload() data: { text: string }) {
    throw new Error(`cannot answer ${data.text}`);
  }
}

/** What a JSON logger (nestjs-pino, ConsoleLogger json) is handed: the message and the objects after it. */
interface Call {
  readonly level: string;
  readonly message: unknown;
  readonly params: unknown[];
}

/** Records every call, and prints it through a text ConsoleLogger (whose output the test captures). */
class RecordingLogger implements LoggerService {
  readonly calls: Call[] = [];
  private readonly console = new ConsoleLogger({ colors: false });

  log(message: unknown, ...params: unknown[]) {
    this.calls.push({ level: 'log', message, params });
    this.console.log(message, ...params);
  }

  warn(message: unknown, ...params: unknown[]) {
    this.calls.push({ level: 'warn', message, params });
    this.console.warn(message, ...params);
  }

  error(message: unknown, ...params: unknown[]) {
    this.calls.push({ level: 'error', message, params });
    this.console.error(message, ...params);
  }
}

const ESC = '\u001b';
const EVIL_PATTERN = `log.evil\nFORGED [Nest] 1 - ERROR [RedisStreamsServer] all is lost ${ESC}[2J${ESC}[31m`;
const EVIL_HEADER = `x-evil\nFORGED-HEADER${ESC}[31m`;

describe('log lines from untrusted message fields (issue 15)', () => {
  const prefix = uniquePrefix('log-safety');
  const keys = testKeys(prefix);
  const admin = new Redis(redisUrl(), { maxRetriesPerRequest: 1 });
  const logger = new RecordingLogger();
  let app: INestMicroservice;
  let client: RedisStreamsClient;
  let output = '';
  const writes = { stdout: process.stdout.write, stderr: process.stderr.write };

  beforeAll(async () => {
    const moduleRef = await Test.createTestingModule({
      imports: [RedisStreamsEnterpriseModule.forRoot(testConfig(prefix))],
      controllers: [SafeController],
    }).compile();
    app = moduleRef.createNestMicroservice({ strategy: moduleRef.get(RedisStreamsServer) });
    app.useLogger(logger);
    app.useGlobalFilters(new RedisStreamsExceptionFilter());
    await app.listen();
    client = moduleRef.get(RedisStreamsClient);
    // Capture what the ConsoleLogger prints (it writes to process.stdout/stderr directly).
    for (const name of ['stdout', 'stderr'] as const) {
      const original = writes[name];
      process[name].write = ((chunk: string | Uint8Array, ...rest: unknown[]) => {
        output += typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8');
        return (original as (...args: unknown[]) => boolean).call(process[name], chunk, ...rest);
      }) as typeof process.stdout.write;
    }
  }, 30_000);

  afterAll(async () => {
    await client.close();
    process.stdout.write = writes.stdout;
    process.stderr.write = writes.stderr;
    await app.close();
    await cleanupPrefix(admin, prefix);
    admin.disconnect();
  }, 30_000);

  it('escapes a newline and ANSI escapes of a pattern and of a header name; JSON loggers get the fields', async () => {
    const stream = keys.stream('log.safe');
    await admin.xadd(stream, '*', 'v', '1', 'pattern', EVIL_PATTERN, 'id', 'm-1', 'data', '{}');
    await admin.xadd(stream, '*', 'v', '1', 'pattern', 'log.safe', 'id', 'm-2', 'data', '{}', 'headers', JSON.stringify({ [EVIL_HEADER]: 'v' }));
    const deadLettered = () => logger.calls.filter((c) => c.level === 'error' && String(c.message).startsWith('Message dead-lettered'));
    await waitFor(() => deadLettered().length === 2, { message: 'both entries dead-lettered' });
    await waitFor(() => output.includes('FORGED-HEADER'), { message: 'the header line printed' });

    // The text output: the forged line never starts a line, no escape character reaches the terminal, and the
    // escaped forms show what the message carried.
    expect(output).not.toMatch(/(^|\n)FORGED/);
    expect(output).not.toContain(ESC);
    expect(output).toContain('log.evil\\nFORGED [Nest] 1 - ERROR');
    expect(output).toContain('\\x1b[2J');
    expect(output).toMatch(/x-evil\\+nFORGED-HEADER/);

    // Structured: the fields object after the message, each value escaped.
    const [noHandler, badHeader] = deadLettered();
    expect(noHandler!.message).toMatch(/^Message dead-lettered \(no-handler\): NoHandlerError: .*log\.evil\\nFORGED/);
    expect(noHandler!.params[0]).toEqual({
      stream,
      group: 'svc',
      entryId: expect.stringMatching(/^\d+-\d+$/),
      reason: 'no-handler',
      error: expect.stringContaining('log.evil\\nFORGED'),
    });
    expect(badHeader!.params[0]).toMatchObject({ stream, group: 'svc', reason: 'decode-failed' });
    for (const call of logger.calls) {
      for (const value of [call.message, ...call.params.flatMap((p) => (typeof p === 'object' && p !== null ? Object.values(p) : [p]))]) {
        if (typeof value === 'string') expect(value).not.toMatch(/[\n\u001b]/);
      }
    }
  }, 30_000);

  it('escapes a request handler error that quotes the request, in its message and in its stack', async () => {
    await expect(lastValueFrom(client.send('log.ask', { text: `x\nFORGED-STACK${ESC}[31m` }))).rejects.toMatchObject({ message: 'Internal server error' });
    await waitFor(() => output.includes('FORGED-STACK'), { message: 'the request failure logged' });
    expect(output).not.toMatch(/(^|\n)FORGED/);
    expect(output).not.toContain(ESC);
    expect(output).toContain('cannot answer x\\nFORGED-STACK\\x1b[31m');
  }, 30_000);
});
