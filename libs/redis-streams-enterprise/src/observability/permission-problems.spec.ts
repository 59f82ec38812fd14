import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import { SCHEDULE_RETRY } from '../connection/scripts/settle.scripts.js';
import { classifyRedisError } from '../connection/redis-error-codes.js';
import { aclUserOf, classifyNoPerm, PermissionProblems } from './permission-problems.js';

const SHA = createHash('sha1').update(SCHEDULE_RETRY).digest('hex');

/** A reply error as ioredis makes it: Redis's message, and the command it answered. */
function replyError(message: string, name: string, args: unknown[] = []): Error {
  return Object.assign(new Error(message), { name: 'ReplyError', command: { name, args } });
}

function recordingLogger() {
  const lines: { level: 'error' | 'log'; text: string }[] = [];
  return { lines, error: (text: string) => lines.push({ level: 'error', text }), log: (text: string) => lines.push({ level: 'log', text }) };
}

describe('classifyNoPerm', () => {
  it('names the refused command (Redis 7.0 and 7.2+ wording)', () => {
    expect(classifyNoPerm(replyError("NOPERM this user has no permissions to run the 'hdel' command", 'hdel'))).toMatchObject({ command: 'HDEL', kind: 'command' });
    expect(classifyNoPerm(new Error("NOPERM User consumer has no permissions to run the 'client|setname' command"))).toMatchObject({ command: 'CLIENT|SETNAME', kind: 'command' });
    expect(classifyRedisError(new Error("NOPERM User u has no permissions to run the 'zrange' command"))).toBe('noperm');
  });

  it('names the command whose key was refused', () => {
    expect(classifyNoPerm(replyError('NOPERM this user has no permissions to access one of the keys used as arguments', 'xadd', ['other:stream']))).toMatchObject({ command: 'XADD', kind: 'key' });
    expect(classifyNoPerm(replyError('NOPERM No permissions to access a key', 'xgroup', ['CREATE']))).toMatchObject({ command: 'XGROUP|CREATE', kind: 'key' });
  });

  it('names the library script and the commands it runs when Redis 7.0 does not say which one it refused', () => {
    const denial = classifyNoPerm(
      replyError(`ERR The user executing the script can't run this command or subcommand script: ${SHA}, on @user_script:1.`, 'evalsha', [SHA, 3]),
    );
    expect(denial).toMatchObject({ command: 'EVALSHA', kind: 'command', script: 'rseScheduleRetry' });
    expect(denial?.scriptCommands).toEqual(expect.arrayContaining(['TIME', 'XPENDING', 'ZADD', 'HSETNX']));
  });

  it('names the command when Redis does, inside a script too (7.2+)', () => {
    const denial = classifyNoPerm(
      replyError("ERR ACL failure in script: NOPERM User u has no permissions to run the 'hsetnx' command script: x, on @user_script:10.", 'eval', [SCHEDULE_RETRY]),
    );
    expect(denial).toMatchObject({ command: 'HSETNX', script: 'rseScheduleRetry' });
    expect(denial?.scriptCommands).toBeUndefined();
  });

  it('ignores every other error', () => {
    expect(classifyNoPerm(new Error('NOGROUP No such key'))).toBeUndefined();
    expect(classifyNoPerm(new Error('WRONGPASS invalid username-password pair'))).toBeUndefined();
    expect(classifyNoPerm('NOPERM')).toBeUndefined();
  });
});

describe('PermissionProblems', () => {
  it('logs a refused command once, counts it and lists it until the command succeeds again', () => {
    const logger = recordingLogger();
    const problems = new PermissionProblems(logger, 'consumer-u');
    const refusal = () => replyError("NOPERM this user has no permissions to run the 'hdel' command", 'hdel', ['k', 'id']);
    expect(problems.report(refusal())).toBe(true);
    expect(problems.report(refusal())).toBe(true);
    expect(problems.report(new Error('ECONNRESET'))).toBe(false);
    expect(logger.lines).toHaveLength(1);
    expect(logger.lines[0]!.level).toBe('error');
    expect(logger.lines[0]!.text).toMatch(/^Redis refused HDEL for user consumer-u: NOPERM this user has no permissions to run the 'hdel' command — grant it \(see the docs › Security › Least privilege \(ACL\)/);
    expect(logger.lines[0]!.text).toMatch(/failure record/);
    expect(problems.list()).toEqual([{ command: 'HDEL', kind: 'command', message: expect.stringContaining('NOPERM'), since: expect.any(String), count: 2 }]);
    expect(problems.any).toBe(true);
  });

  it('watches a connection: refusals are reported, a later success clears them, other errors are left to their owners', async () => {
    const logger = recordingLogger();
    const problems = new PermissionProblems(logger, 'u');
    let reply: () => Promise<unknown> = () => Promise.reject(replyError("NOPERM this user has no permissions to run the 'zrange' command", 'zrange'));
    const connection = {
      sendCommand(command: { promise: Promise<unknown> }) {
        return command.promise;
      },
    };
    problems.watch(connection as unknown as Redis);
    problems.watch(connection as unknown as Redis); // idempotent
    const send = (name: string, args: unknown[] = []) => {
      const command = { name, args, promise: reply() };
      command.promise.catch(() => undefined);
      return connection.sendCommand(command) as Promise<unknown>;
    };
    await expect(send('zrange', ['k', 0, 0])).rejects.toThrow(/NOPERM/);
    await expect(send('zrange', ['k', 0, 0])).rejects.toThrow(/NOPERM/);
    await new Promise((resolve) => setImmediate(resolve));
    expect(problems.list()).toEqual([expect.objectContaining({ command: 'ZRANGE', count: 2 })]);
    reply = () => Promise.reject(new Error('NOGROUP No such key'));
    await expect(send('xreadgroup')).rejects.toThrow(/NOGROUP/);
    reply = () => Promise.resolve([]);
    await send('zrange', ['k', 0, 0]);
    await new Promise((resolve) => setImmediate(resolve));
    expect(problems.list()).toEqual([]);
    expect(logger.lines.map((l) => l.level)).toEqual(['error', 'log']);
    expect(logger.lines[1]!.text).toBe('Redis now allows ZRANGE for user u; permission problem cleared');
  });

  it('says which commands a refused script runs', () => {
    const logger = recordingLogger();
    new PermissionProblems(logger, 'u').report(
      replyError(`ERR The user executing the script can't run this command or subcommand script: ${SHA}, on @user_script:1.`, 'evalsha', [SHA]),
    );
    expect(logger.lines[0]!.text).toMatch(/^Redis refused a command in script rseScheduleRetry for user u: .* the script runs .*HSETNX.*: grant all of them/);
  });
});

describe('aclUserOf', () => {
  it('reads the user from the URL, the options or the Cluster node options', () => {
    expect(aclUserOf({ url: 'redis://orders%2Dsvc:pw@localhost:6379' })).toBe('orders-svc');
    expect(aclUserOf({ url: 'redis://localhost:6379' })).toBe('default');
    expect(aclUserOf({ url: 'redis://localhost', options: { username: 'x' } })).toBe('x');
    expect(aclUserOf({ cluster: { options: { redisOptions: { username: 'c' } } } })).toBe('c');
  });
});
