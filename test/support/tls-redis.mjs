// Plain JavaScript, like redis-process.mjs. Types: tls-redis.d.mts.
// Throw-away redis-servers that speak TLS (Debian's redis-server is built with it), on free loopback ports.
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { assertRedisServerInstalled, freePort } from './redis-process.mjs';

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** redis-cli over TLS, trusting the test CA and showing the client certificate (accepted by every server here). */
function tlsCli(certs, port, ...args) {
  return new Promise((resolve) => {
    execFile(
      'redis-cli',
      ['--tls', '--cacert', certs.ca.cert, '--cert', certs.client.cert, '--key', certs.client.key, '-h', '127.0.0.1', '-p', String(port), ...args],
      { encoding: 'utf8', timeout: 30_000 },
      (error, stdout, stderr) => resolve({ ok: !error, stdout: stdout ?? '', stderr: stderr ?? '' }),
    );
  });
}

function tlsArgs(certs, leaf, authClients) {
  return [
    '--tls-cert-file', certs[leaf].cert, '--tls-key-file', certs[leaf].key, '--tls-ca-cert-file', certs.ca.cert,
    // Redis asks every client for a certificate unless told otherwise (tls-auth-clients defaults to yes).
    '--tls-auth-clients', authClients ? 'yes' : 'no',
  ];
}

async function waitServing(certs, child, port, logfile) {
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`redis-server exited at start (TLS port ${port}): ${logTail(logfile)}`);
    // Checked by pid: another process could have taken the port between freePort() and the spawn.
    const { stdout } = await tlsCli(certs, port, 'INFO', 'server');
    if (/process_id:(\d+)/.exec(stdout)?.[1] === String(child.pid)) return;
    await sleep(25);
  }
  child.kill('SIGKILL');
  throw new Error(`redis-server did not answer on TLS port ${port}: ${logTail(logfile)}`);
}

/** The end of a server's log, for an error message (the directory is removed on stop()). */
function logTail(logfile) {
  try {
    return readFileSync(logfile, 'utf8').trim().split('\n').slice(-3).join(' | ');
  } catch {
    // No log yet: the server died before it opened it.
    return `(no log at ${logfile})`;
  }
}

function spawnServer(dir, args) {
  return spawn('redis-server', ['--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--logfile', join(dir, 'redis.log'), ...args], {
    stdio: 'ignore',
  });
}

function killAll(children) {
  return Promise.all(
    children.map(
      (child) =>
        new Promise((resolve) => {
          if (child.exitCode !== null || child.signalCode !== null) return resolve();
          child.once('exit', () => resolve());
          child.kill('SIGKILL');
        }),
    ),
  );
}

/**
 * One redis-server with a TLS port (`tlsPort`) and, if `plainPort` is asked for, a plain-text port too (to test TLS
 * against a port that does not speak it); otherwise `--port 0`.
 */
export class TlsRedisServer {
  #child;

  constructor(dir, tlsPort, plainPort, child) {
    this.dir = dir;
    this.tlsPort = tlsPort;
    this.plainPort = plainPort;
    this.#child = child;
  }

  static async start({ certs, leaf = 'server', authClients = false, plainPort = false }) {
    assertRedisServerInstalled();
    const dir = mkdtempSync(join(tmpdir(), 'rse-tls-redis-'));
    const tlsPort = await freePort();
    const port = plainPort ? await freePort() : 0;
    const child = spawnServer(dir, ['--port', String(port), '--tls-port', String(tlsPort), ...tlsArgs(certs, leaf, authClients)]);
    const server = new TlsRedisServer(dir, tlsPort, port || undefined, child);
    try {
      await waitServing(certs, child, tlsPort, join(dir, 'redis.log'));
    } catch (error) {
      await server.stop();
      throw error;
    }
    return server;
  }

  async stop() {
    await killAll([this.#child]);
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/**
 * A Redis Cluster of `masters` masters (no replicas) that speaks TLS only: `--port 0`, `--tls-port`, and the cluster
 * bus over TLS too (`--tls-cluster yes`, on a `--cluster-port` of its own: the default, port + 10000, can lie above
 * 65535 for an ephemeral port).
 */
export class TlsRedisCluster {
  #children = [];
  #dirs = [];

  constructor() {
    this.nodes = [];
  }

  static async start({ certs, masters = 3, leaf = 'server' }) {
    assertRedisServerInstalled();
    const cluster = new TlsRedisCluster();
    try {
      await cluster.#start(certs, masters, leaf);
    } catch (error) {
      await cluster.stop();
      throw error;
    }
    return cluster;
  }

  async #start(certs, masters, leaf) {
    // freePort() releases the port it found, so two calls can return the same one: keep them distinct.
    const taken = new Set();
    const distinctPort = async () => {
      for (;;) {
        const port = await freePort();
        if (!taken.has(port)) return taken.add(port), port;
      }
    };
    for (let i = 0; i < masters; i++) {
      const dir = mkdtempSync(join(tmpdir(), 'rse-tls-cluster-'));
      this.#dirs.push(dir);
      const port = await distinctPort();
      const busPort = await distinctPort();
      this.#children.push(
        spawnServer(dir, [
          '--port', '0', '--tls-port', String(port), '--tls-cluster', 'yes', '--cluster-enabled', 'yes', '--cluster-port', String(busPort),
          '--cluster-config-file', 'nodes.conf', '--cluster-node-timeout', '2000', ...tlsArgs(certs, leaf, false),
        ]),
      );
      this.nodes.push({ host: '127.0.0.1', port });
    }
    await Promise.all(this.nodes.map((node, i) => waitServing(certs, this.#children[i], node.port, join(this.#dirs[i], 'redis.log'))));
    const create = await tlsCli(certs, this.nodes[0].port, '--cluster', 'create', ...this.nodes.map((n) => `${n.host}:${n.port}`), '--cluster-replicas', '0', '--cluster-yes');
    if (!create.ok) throw new Error(`redis-cli --cluster create failed: ${create.stdout}${create.stderr}`);
    const deadline = Date.now() + 15_000;
    for (;;) {
      const infos = await Promise.all(this.nodes.map((n) => tlsCli(certs, n.port, 'CLUSTER', 'INFO')));
      if (infos.every(({ stdout }) => /cluster_state:ok/.test(stdout) && /cluster_known_nodes:(\d+)/.exec(stdout)?.[1] === String(masters))) return;
      if (Date.now() > deadline) throw new Error('TLS Redis Cluster: timed out waiting for cluster_state:ok on every node');
      await sleep(50);
    }
  }

  /** Kills every node (SIGKILL) and removes their data. Idempotent. */
  async stop() {
    await killAll(this.#children);
    for (const dir of this.#dirs) rmSync(dir, { recursive: true, force: true });
  }
}
