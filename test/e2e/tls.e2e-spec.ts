import { Controller, Inject, Injectable, type INestMicroservice } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { EventPattern, MessagePattern, Payload } from '@nestjs/microservices';
import { readFileSync } from 'node:fs';
import { inspect } from 'node:util';
import { lastValueFrom } from 'rxjs';
import {
  ConfigValidator,
  ConnectionFailedError,
  InvalidOptionsError,
  RedisStreamsClient,
  RedisStreamsServer,
  type RedisStreamsEnterpriseConfig,
} from 'nestjs-redis-streams-enterprise';
import { startConsumer, testConfig } from '../support/nest-apps.js';
import { uniquePrefix } from '../support/redis.js';
import { createTestCertificates, type TestCertificates } from '../support/tls-certs.mjs';
import { TlsRedisCluster, TlsRedisServer } from '../support/tls-redis.mjs';
import { waitFor } from '../support/wait-for.js';

/** A connect that hangs (TLS to a plain-text port) ends after this; ioredis' own default is 10 s. */
const CONNECT_TIMEOUT_MS = 1_500;

@Injectable()
class Recorder {
  readonly events: number[] = [];
}

@Controller()
class TlsController {
  constructor(@Inject(Recorder) private readonly recorder: Recorder) {}

  @EventPattern('tls.event')
  onEvent(@Payload() data: { n: number }) {
    this.recorder.events.push(data.n);
  }

  @MessagePattern('tls.sum')
  sum(@Payload() numbers: number[]) {
    return numbers.reduce((a, b) => a + b, 0);
  }
}

/** Boots a Nest app over `config`, checks emit → handler and send → reply, and closes it. */
async function expectMessagesFlow(config: RedisStreamsEnterpriseConfig): Promise<void> {
  const { app, client } = await startConsumer(config, [TlsController], [Recorder]);
  try {
    const recorder = app.get(Recorder);
    await lastValueFrom(client.emit('tls.event', { n: 7 }));
    await waitFor(() => recorder.events.includes(7), { message: 'the event to be handled over TLS' });
    await expect(lastValueFrom(client.send('tls.sum', [1, 2, 3]))).resolves.toBe(6);
  } finally {
    await app.close();
  }
}

/** Starts a server that must fail listen(): returns its error and how long listen() took. */
async function listenFailure(config: RedisStreamsEnterpriseConfig): Promise<{ error: Error; tookMs: number }> {
  const server = new RedisStreamsServer(config);
  const app: INestMicroservice = await NestFactory.createMicroservice(class EmptyModule {}, { strategy: server, logger: false });
  const started = Date.now();
  try {
    await app.listen();
  } catch (error) {
    return { error: error as Error, tookMs: Date.now() - started };
  } finally {
    await app.close();
  }
  throw new Error('listen() succeeded, but it should have failed');
}

describe('TLS (rediss://) against local TLS redis-servers', () => {
  const prefix = uniquePrefix('tls');
  let certs: TestCertificates;
  /** TLS port with the localhost/127.0.0.1 certificate, plus a plain-text port. */
  let server: TlsRedisServer;
  /** TLS only, client certificates required (tls-auth-clients yes). */
  let mutual: TlsRedisServer;
  /** TLS only, certificate for redis.test.internal only. */
  let otherName: TlsRedisServer;

  const config = (port: number, tls: NonNullable<RedisStreamsEnterpriseConfig['connection']>['tls'], url = `rediss://127.0.0.1:${port}`) =>
    testConfig(prefix, { connection: { url, tls, options: { connectTimeout: CONNECT_TIMEOUT_MS } } });

  beforeAll(async () => {
    certs = await createTestCertificates();
    [server, mutual, otherName] = await Promise.all([
      TlsRedisServer.start({ certs, plainPort: true }),
      TlsRedisServer.start({ certs, authClients: true }),
      TlsRedisServer.start({ certs, leaf: 'otherName' }),
    ]);
  });

  afterAll(async () => {
    await Promise.all([server?.stop(), mutual?.stop(), otherName?.stop()]);
    certs?.remove();
  });

  it('with the CA (a file, or the PEM inline): emit → handler and send → reply on a real Nest app', async () => {
    await expectMessagesFlow(config(server.tlsPort, { caFile: certs.ca.cert }));
    await expectMessagesFlow(config(server.tlsPort, { ca: readFileSync(certs.ca.cert, 'utf8') }, `rediss://localhost:${server.tlsPort}`));
  });

  it('mutual TLS: with a client certificate messages flow; without one listen() fails at once, saying so', async () => {
    await expectMessagesFlow(config(mutual.tlsPort, { caFile: certs.ca.cert, certFile: certs.client.cert, keyFile: certs.client.key }));
    const { error, tookMs } = await listenFailure(config(mutual.tlsPort, { caFile: certs.ca.cert }));
    expect(error).toBeInstanceOf(ConnectionFailedError);
    expect(error.message).toMatch(new RegExp(`^Cannot connect to Redis at rediss://127\\.0\\.0\\.1:${mutual.tlsPort} \\(TLS: `));
    expect(error.message).toMatch(/ECONNRESET|CERTIFICATE_REQUIRED/);
    expect(error.message).toContain('set connection.tls.cert and key (or certFile and keyFile)');
    expect(tookMs).toBeLessThan(CONNECT_TIMEOUT_MS);
  });

  it('host name: a certificate for another name fails (ERR_TLS_CERT_ALTNAME_INVALID); servername set to that name works', async () => {
    const { error, tookMs } = await listenFailure(config(otherName.tlsPort, { caFile: certs.ca.cert }));
    expect(error).toBeInstanceOf(ConnectionFailedError);
    expect(error.message).toBe(
      `Cannot connect to Redis at rediss://127.0.0.1:${otherName.tlsPort} (TLS: the server's certificate is not for this host ` +
        `[ERR_TLS_CERT_ALTNAME_INVALID: Hostname/IP does not match certificate's altnames: IP: 127.0.0.1 is not in the cert's list: ]; ` +
        'connect by a name the certificate lists, or set connection.tls.servername to it); check connection.url and that Redis is running',
    );
    expect((error.cause as { code?: string }).code).toBe('ERR_TLS_CERT_ALTNAME_INVALID');
    expect(tookMs).toBeLessThan(CONNECT_TIMEOUT_MS);
    await expectMessagesFlow(config(otherName.tlsPort, { caFile: certs.ca.cert, servername: 'redis.test.internal' }));
    const wrongName = await listenFailure(config(otherName.tlsPort, { caFile: certs.ca.cert, servername: 'other.test.internal' }));
    expect(wrongName.error.message).toContain("Host: other.test.internal. is not in the cert's altnames: DNS:redis.test.internal");
  });

  it('a CA that did not sign the server certificate, or none (Node built-in CAs), fails with the verification code', async () => {
    for (const tls of [{ caFile: certs.otherCa.cert }, undefined]) {
      const { error, tookMs } = await listenFailure(config(server.tlsPort, tls));
      expect(error).toBeInstanceOf(ConnectionFailedError);
      expect(error.message).toMatch(
        new RegExp(
          `^Cannot connect to Redis at rediss://127\\.0\\.0\\.1:${server.tlsPort} \\(TLS: the server's certificate is not trusted ` +
            `\\[(SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT_LOCALLY): .+\\]; ` +
            'set connection.tls.ca or caFile to the CA that signed it\\)',
        ),
      );
      expect(tookMs).toBeLessThan(CONNECT_TIMEOUT_MS);
    }
  });

  it('plain redis:// to the TLS port fails at start (the server drops the connection), never a silent downgrade', async () => {
    const { error, tookMs } = await listenFailure(testConfig(prefix, { connection: { url: `redis://127.0.0.1:${server.tlsPort}`, options: { connectTimeout: CONNECT_TIMEOUT_MS } } }));
    expect(error).toBeInstanceOf(ConnectionFailedError);
    expect(error.message).toMatch(
      new RegExp(
        `^Cannot connect to Redis at redis://127\\.0\\.0\\.1:${server.tlsPort} \\(the server closed the connection before it was ready ` +
          '\\[((write|read) ECONNRESET|Connection is closed\\.)\\]; if it is a TLS port, use a rediss:// URL or connection\\.tls\\)',
      ),
    );
    expect(tookMs).toBeLessThan(CONNECT_TIMEOUT_MS);
  });

  it('TLS to a plain-text port fails after connectTimeout (no handshake), naming the TLS port as the fix', async () => {
    const { error, tookMs } = await listenFailure(config(server.plainPort!, { caFile: certs.ca.cert }));
    expect(error).toBeInstanceOf(ConnectionFailedError);
    expect(error.message).toContain(
      `Cannot connect to Redis at rediss://127.0.0.1:${server.plainPort} (TLS: no handshake within the connect timeout [connect ETIMEDOUT]; ` +
        "check that the port is the server's tls-port, not a plain-text port)",
    );
    expect(tookMs).toBeGreaterThanOrEqual(CONNECT_TIMEOUT_MS - 50);
    expect(tookMs).toBeLessThan(CONNECT_TIMEOUT_MS + 3_000);
  });

  it('a refused password: ConnectionFailedError without the password, in its message or anywhere in its causes', async () => {
    const secret = 'tls-secret-do-not-leak';
    const { error } = await listenFailure(config(server.tlsPort, { caFile: certs.ca.cert }, `rediss://alice:${secret}@127.0.0.1:${server.tlsPort}`));
    expect(error).toBeInstanceOf(ConnectionFailedError);
    expect(error.message).toMatch(new RegExp(`^Cannot connect to Redis at rediss://\\*\\*\\*@127\\.0\\.0\\.1:${server.tlsPort} \\(WRONGPASS`));
    expect(inspect(error, { depth: 20, showHidden: true })).not.toContain(secret);
  });

  it('a standalone client fails connect() the same way', async () => {
    const client = new RedisStreamsClient(config(server.tlsPort, { caFile: certs.otherCa.cert }));
    try {
      await expect(client.connect()).rejects.toThrow(/TLS: the server's certificate is not trusted/);
    } finally {
      await client.close();
    }
  });
});

describe('connection.tls validation', () => {
  let certs: TestCertificates;
  beforeAll(async () => {
    certs = await createTestCertificates();
  });
  afterAll(() => certs?.remove());

  const errorsOf = (connection: RedisStreamsEnterpriseConfig['connection']) =>
    ConfigValidator.validateConfig({ connection }).errors.map((e) => e.message);

  it('accepts files or inline PEMs, and defaults rejectUnauthorized to true', () => {
    const result = ConfigValidator.validateConfig({
      connection: { url: 'rediss://redis.example:6380', tls: { caFile: certs.ca.cert, certFile: certs.client.cert, keyFile: certs.client.key } },
    });
    expect(result.errors).toEqual([]);
    expect(result.config?.connection.tls?.rejectUnauthorized).toBe(true);
    expect(errorsOf({ cluster: { nodes: [{ host: 'h', port: 7000 }] }, tls: { ca: readFileSync(certs.ca.cert, 'utf8') } })).toEqual([]);
  });

  it('refuses TLS with a redis:// URL, a second tls in the ioredis options, half a client certificate, PEM given twice', () => {
    expect(errorsOf({ url: 'redis://127.0.0.1:6380', tls: {} })).toEqual([
      'connection.url must be a rediss:// URL when connection.tls is set (redis:// would read as plain text)',
    ]);
    expect(errorsOf({ url: 'rediss://h:1', tls: {}, options: { tls: {} } })).toEqual([
      'connection.options.tls must not be set together with connection.tls (set TLS in connection.tls only)',
    ]);
    expect(errorsOf({ cluster: { nodes: [{ host: 'h', port: 1 }], options: { redisOptions: { tls: {} } } }, tls: {} })).toEqual([
      'connection.cluster.options.redisOptions.tls must not be set together with connection.tls (set TLS in connection.tls only)',
    ]);
    expect(errorsOf({ url: 'rediss://h:1', tls: { certFile: certs.client.cert, ca: 'x', caFile: certs.ca.cert, passphrase: 'p' } })).toEqual([
      'connection.tls.caFile must not be set together with connection.tls.ca',
      'connection.tls.key (or keyFile) is needed with a client certificate',
      'connection.tls.passphrase needs connection.tls.key or keyFile',
    ]);
    expect(errorsOf({ url: 'rediss://h:1', tls: { rejectUnauthorized: 'no' as never, servername: '' } })).toEqual(
      expect.arrayContaining(['connection.tls.rejectUnauthorized must be a boolean value', 'connection.tls.servername should not be empty']),
    );
  });

  it('reads the files at start: a missing file, a file without a PEM, a key of another certificate fail, naming the file, never quoting a key', () => {
    const missing = `${certs.dir}/missing.pem`;
    expect(errorsOf({ url: 'rediss://h:1', tls: { caFile: missing } })).toEqual([`connection.tls.caFile (${missing}) cannot be read (ENOENT)`]);
    expect(errorsOf({ url: 'rediss://h:1', tls: { caFile: certs.client.key } })).toEqual([
      `connection.tls.caFile (${certs.client.key}) holds no PEM certificate (-----BEGIN CERTIFICATE-----)`,
    ]);
    const otherKey = readFileSync(certs.server.key, 'utf8');
    const messages = errorsOf({ url: 'rediss://h:1', tls: { certFile: certs.client.cert, key: otherKey } });
    expect(messages).toEqual([`connection.tls.key is not the private key of connection.tls.certFile (${certs.client.cert})`]);
    expect(errorsOf({ url: 'rediss://h:1', tls: { certFile: certs.client.cert, keyFile: certs.client.cert } })).toEqual([
      `connection.tls.keyFile (${certs.client.cert}) is not a usable PEM private key (encrypted keys need connection.tls.passphrase, and it must be right)`,
    ]);
    const thrown = (() => {
      try {
        new RedisStreamsClient({ connection: { url: 'rediss://h:1', tls: { certFile: certs.client.cert, key: otherKey } } });
      } catch (error) {
        return error as Error;
      }
      throw new Error('the client accepted a key of another certificate');
    })();
    expect(thrown).toBeInstanceOf(InvalidOptionsError);
    expect(inspect(thrown, { depth: 20 })).not.toContain('PRIVATE KEY');
  });
});

describe('TLS to a local Redis Cluster (3 masters, --tls-cluster yes, TLS ports only)', () => {
  const prefix = uniquePrefix('tls-cluster');
  let certs: TestCertificates;
  let cluster: TlsRedisCluster;

  beforeAll(async () => {
    certs = await createTestCertificates();
    // The nodes' certificate names redis.test.internal only: ioredis reaches every node by IP address.
    cluster = await TlsRedisCluster.start({ certs, leaf: 'otherName' });
  });

  afterAll(async () => {
    await cluster?.stop();
    certs?.remove();
  });

  const config = (tls: NonNullable<RedisStreamsEnterpriseConfig['connection']>['tls']) =>
    testConfig(prefix, { connection: { cluster: { nodes: cluster.nodes, options: { redisOptions: { connectTimeout: CONNECT_TIMEOUT_MS } } }, tls } });

  it('emit → handler and send → reply, with servername set to the name in the node certificates', async () => {
    await expectMessagesFlow(config({ caFile: certs.ca.cert, servername: 'redis.test.internal' }));
  });

  it('without servername the IP addresses do not match the certificates: listen() fails at once, naming a node', async () => {
    const { error, tookMs } = await listenFailure(config({ caFile: certs.ca.cert }));
    expect(error).toBeInstanceOf(ConnectionFailedError);
    expect(error.message).toMatch(
      /^Cannot connect to Redis at cluster 127\.0\.0\.1:\d+,127\.0\.0\.1:\d+,127\.0\.0\.1:\d+ \(node 127\.0\.0\.1:\d+: TLS: the server's certificate is not for this host \[ERR_TLS_CERT_ALTNAME_INVALID: /,
    );
    expect(error.message).toContain('set connection.tls.servername to it');
    expect(tookMs).toBeLessThan(CONNECT_TIMEOUT_MS);
  });

  it('without TLS (plain text to the TLS ports) listen() fails at once', async () => {
    const { error, tookMs } = await listenFailure(
      testConfig(prefix, { connection: { cluster: { nodes: cluster.nodes, options: { redisOptions: { connectTimeout: CONNECT_TIMEOUT_MS } } } } }),
    );
    expect(error).toBeInstanceOf(ConnectionFailedError);
    expect(error.message).toMatch(/^Cannot connect to Redis at cluster .* \(node 127\.0\.0\.1:\d+: the server closed the connection before it was ready .*use a rediss:\/\/ URL or connection\.tls\)/);
    expect(tookMs).toBeLessThan(CONNECT_TIMEOUT_MS);
  });
});
