import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The soak (test/soak, `npm run test:soak`) with a fixed seed and a short duration, so CI keeps the harness, the
 * nemesis and the checker working: real redis-server (AOF), consumer and producer child processes on the built
 * library, every fault of the single topology. Asserts the checker's verdict: exit code 0 and a zero in every
 * row that must be zero. Long runs (30 minutes, overnight) are manual: see docs/development.md › Soak.
 *
 * Bugs the soak found, each fixed with a focused test: a skipped entry while a partition lease had lapsed locally
 * (lease-lapse), an entry delivered by a read queued during a Redis restart (restart-during-commit), the reply reader
 * of a client after a connection reset (reply-after-reset), and entries a former owner's stale read took from a
 * partition, handled after later ones (stolen-read; seed 11, global order).
 */
const root = fileURLToPath(new URL('../..', import.meta.url));
const SEED = 20261207;
const FEATURES = 'plain,poison,requests,keyed,global,redrive,replay,scale';
const ARGS = ['--seed', String(SEED), '--duration', '40s', '--features', FEATURES, '--mean-gap', '3s', '--drain-timeout', '45s'];

interface Row {
  check: string;
  value: number | string;
  expect: string;
  ok: boolean | null;
}

function run(command: string, args: string[], onChild?: (child: ChildProcess) => void): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    onChild?.(child);
    let output = '';
    child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.on('exit', (code) => resolve({ code, output }));
  });
}

describe('soak (fixed seed, short, single topology)', () => {
  const out = mkdtempSync(join(tmpdir(), 'rse-soak-e2e-'));
  let soak: ChildProcess | undefined;

  afterAll(() => {
    // The soak kills its children and its Redis on SIGTERM; only needed when the test timed out.
    if (soak && soak.exitCode === null) soak.kill('SIGTERM');
    rmSync(out, { recursive: true, force: true });
  });

  it(`seed ${SEED}, 40 s: the checker finds no violation`, async () => {
    await new Promise<void>((resolve, reject) =>
      execFile(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', 'test/soak/tsconfig.json'], { cwd: root }, (error, stdout) =>
        error ? reject(new Error(`tsc -p test/soak failed:\n${stdout}`)) : resolve(),
      ),
    );
    const { code, output } = await run(process.execPath, ['dist/soak/test/soak/soak.js', ...ARGS, '--out', out], (child) => (soak = child));
    const result = JSON.parse(readFileSync(join(out, 'result.json'), 'utf8')) as { rows: Row[]; passed: boolean; faults: number };
    if (code !== 0) console.error(output.slice(-6_000));
    const mustBeZero = result.rows.filter((r) => r.expect === '0');
    const nonZero = mustBeZero.filter((r) => r.value !== 0).map((r) => `${r.check}=${r.value}`);
    // The whole table and log tail on failure, so the CI log says what broke and how to replay it.
    expect({ code, nonZero, passed: result.passed }).toEqual({ code: 0, nonZero: [], passed: true });
    expect(mustBeZero.length).toBeGreaterThan(10);
    expect(result.faults).toBeGreaterThan(5);
    const resolved = result.rows.find((r) => r.check === 'emits resolved (ok)');
    expect(Number(resolved?.value)).toBeGreaterThan(100);
  }, 240_000);
});
