/**
 * `npm run docs:check`: everything CI checks about the docs, each step reported, then one line
 * `docs: N passed, N failed`. Exits non-zero when any check failed.
 *
 * 1. docs/configuration.md is what scripts/docs/config-reference.ts generates from the option classes now;
 * 2. the API reference is generated (TypeDoc, into docs/api);
 * 3. the site builds (VitePress fails the build on a link to a page that does not exist);
 * 4. every internal link and anchor of the built site resolves (scripts/docs/check-links.ts).
 * A step that cannot run because an earlier one failed counts as failed.
 */
import { spawnSync } from 'node:child_process';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(HERE, '../../..');
const bin = (name: string) => join(ROOT, 'node_modules/.bin', name);

interface Step {
  readonly name: string;
  readonly command: string;
  readonly args: string[];
  /** Names of steps that must have passed for this one to run. */
  readonly needs: string[];
}

const steps: Step[] = [
  { name: 'configuration reference up to date', command: process.execPath, args: [join(HERE, 'config-reference.js'), '--check'], needs: [] },
  { name: 'API reference generated', command: bin('typedoc'), args: ['--options', 'scripts/docs/typedoc.json'], needs: [] },
  { name: 'site built (no dead page links)', command: bin('vitepress'), args: ['build', 'docs'], needs: ['API reference generated'] },
  { name: 'links and anchors', command: process.execPath, args: [join(HERE, 'check-links.js')], needs: ['site built (no dead page links)'] },
];

const passed = new Set<string>();
let failed = 0;
for (const step of steps) {
  const missing = step.needs.filter((n) => !passed.has(n));
  if (missing.length > 0) {
    console.log(`\n== ${step.name}: not run (needs: ${missing.join(', ')})`);
    failed++;
    continue;
  }
  console.log(`\n== ${step.name}`);
  const started = Date.now();
  const result = spawnSync(step.command, step.args, { cwd: ROOT, stdio: 'inherit' });
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  if (result.status === 0) {
    passed.add(step.name);
    console.log(`== ${step.name}: ok (${seconds} s)`);
  } else {
    failed++;
    console.log(`== ${step.name}: FAILED (${result.error?.message ?? `exit ${result.status ?? result.signal}`}, ${seconds} s)`);
  }
}

console.log(`\ndocs: ${passed.size} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
