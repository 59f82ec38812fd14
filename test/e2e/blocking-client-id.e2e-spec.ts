import type { Redis } from 'ioredis';
import { clientIdOf } from '../../libs/redis-streams-enterprise/src/connection/blocking-read.js';
import { connectOrThrow, createRedisConnection, disconnectOnce } from '../../libs/redis-streams-enterprise/src/connection/redis-connection.factory.js';
import { resolveConfig } from '../../libs/redis-streams-enterprise/src/config/validate-options.js';
import { redisUrl } from '../support/redis.js';
import { TcpProxy } from '../support/tcp-proxy.js';

/**
 * A partitioned consumer asks its blocking connection for its CLIENT ID at start (CLIENT UNBLOCK needs it). Blocking
 * connections do not re-send commands in flight after a reset (a re-sent read would deliver entries nobody handles),
 * and ioredis then never settles such a command: a bare `client('ID')` caught by a reset waited forever, so the
 * consumer never listened (found by the soak, seed 42, 30 minutes: a restarted consumer silent for 60 s while the
 * proxy reset connections). The library's `clientIdOf` fails with the connection instead.
 */
describe('CLIENT ID of a blocking connection, caught by a connection reset (real Redis)', () => {
  let proxy: TcpProxy;
  let blocking: Redis;

  beforeEach(async () => {
    const url = new URL(redisUrl());
    proxy = await TcpProxy.start(url.hostname, Number(url.port));
    const config = resolveConfig({ connection: { url: `redis://127.0.0.1:${proxy.port}` } });
    blocking = createRedisConnection(config.connection, 'blocking', 'client-id-test');
    blocking.on('error', () => undefined);
    await connectOrThrow(blocking, config.connection.url);
  });

  afterEach(async () => {
    disconnectOnce(blocking);
    await proxy.close();
  });

  /** Sends CLIENT ID while the link is black-holed, then resets the connection; what the call did after 3 s. */
  async function askDuringReset(ask: () => Promise<unknown>): Promise<string> {
    proxy.setMode('stall');
    const outcome = ask().then(
      (id) => `answered ${String(id)}`,
      (error: unknown) => `failed: ${String(error)}`,
    );
    await new Promise((resolve) => setTimeout(resolve, 200));
    proxy.setMode('drop');
    proxy.setMode('pass');
    return Promise.race([outcome, new Promise<string>((resolve) => setTimeout(() => resolve('never settled'), 3_000))]);
  }

  it('a bare client("ID") is never settled (the ioredis behaviour the library must not rely on)', async () => {
    expect(await askDuringReset(() => blocking.client('ID'))).toBe('never settled');
  });

  it('clientIdOf settles with undefined at once, and answers again once the connection is back', async () => {
    expect(await askDuringReset(() => clientIdOf(blocking, 10_000))).toBe('answered undefined');
    await new Promise<void>((resolve) => (blocking.status === 'ready' ? resolve() : blocking.once('ready', () => resolve())));
    expect(await clientIdOf(blocking, 10_000)).toEqual(expect.any(Number));
  });
});
