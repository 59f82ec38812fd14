// Plain JavaScript, like redis-process.mjs, so a node script can use it too. Types: tls-certs.d.mts.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

function openssl(dir, ...args) {
  return new Promise((resolve, reject) => {
    execFile('openssl', args, { cwd: dir, encoding: 'utf8', timeout: 10_000 }, (error, _stdout, stderr) =>
      error ? reject(new Error(`openssl ${args[0]} failed: ${stderr || error.message}`)) : resolve(),
    );
  });
}

// EC keys (P-256): a key pair takes milliseconds, where RSA 2048 takes tenths of a second on a loaded machine.
const NEW_KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

async function createCa(dir, name) {
  await openssl(
    dir, 'req', '-x509', ...NEW_KEY, '-keyout', `${name}.key`, '-out', `${name}.crt`, '-days', '2', '-subj', `/CN=${name}`,
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
  );
}

/** A leaf certificate signed by `ca`, with the given subjectAltName (no extendedKeyUsage: Redis nodes use their server certificate as a client certificate on the cluster bus). */
async function createLeaf(dir, ca, name, subjectAltName) {
  await openssl(dir, 'req', '-new', ...NEW_KEY, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`);
  writeFileSync(join(dir, `${name}.ext`), `basicConstraints=CA:FALSE\n${subjectAltName ? `subjectAltName=${subjectAltName}\n` : ''}`);
  await openssl(
    dir, 'x509', '-req', '-in', `${name}.csr`, '-CA', `${ca}.crt`, '-CAkey', `${ca}.key`,
    // A serial of its own (not -CAcreateserial): the leaves are signed concurrently and would race on ca.srl.
    '-set_serial', `0x${randomBytes(8).toString('hex')}`,
    '-days', '2', '-out', `${name}.crt`, '-extfile', `${name}.ext`,
  );
}

/**
 * Throw-away certificates in a temp directory, made with `openssl`:
 * - `ca`: the test CA; `otherCa`: a CA that signed nothing here (a client that trusts only it must refuse the servers);
 * - `server`: for `localhost` and `127.0.0.1`; `otherName`: for `redis.test.internal` only (hostname checks);
 * - `client`: a client certificate for mutual TLS.
 * Each entry holds file paths; `remove()` deletes the directory.
 */
export async function createTestCertificates() {
  const dir = mkdtempSync(join(tmpdir(), 'rse-tls-'));
  const file = (name) => ({ cert: join(dir, `${name}.crt`), key: join(dir, `${name}.key`) });
  try {
    await Promise.all([createCa(dir, 'ca'), createCa(dir, 'other-ca')]);
    await Promise.all([
      createLeaf(dir, 'ca', 'server', 'DNS:localhost,IP:127.0.0.1'),
      createLeaf(dir, 'ca', 'other-name', 'DNS:redis.test.internal'),
      createLeaf(dir, 'ca', 'client', ''),
    ]);
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
  return {
    dir,
    ca: file('ca'),
    otherCa: file('other-ca'),
    server: file('server'),
    otherName: file('other-name'),
    client: file('client'),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
