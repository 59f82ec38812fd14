// Resolve hook registered by nest11-register.mjs: resolves @nestjs/{common,core,microservices,testing,platform-express}
// (and their subpaths) as if imported from NEST_COMPAT_DIR, i.e. to its Nest 11 install. Nest 11 is CommonJS, so
// its own require()s then resolve from its folder, and its peers (rxjs, reflect-metadata, ...) from the repo root.
// Each redirect is logged once per process to NEST11_HOOK_LOG (when set), so .ci/nest11.sh can show it happened.
import { appendFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';

const NEST = /^@nestjs\/(common|core|microservices|testing|platform-express)(\/.*)?$/;
let compatParent = '';
let logFile = '';
const logged = new Set();

export function initialize(data) {
  compatParent = pathToFileURL(`${data.compatDir.replace(/\/$/, '')}/package.json`).href;
  logFile = data.logFile;
}

export async function resolve(specifier, context, nextResolve) {
  if (!compatParent || !NEST.test(specifier)) return nextResolve(specifier, context);
  const resolved = await nextResolve(specifier, { ...context, parentURL: compatParent });
  if (logFile && !logged.has(specifier)) {
    logged.add(specifier);
    appendFileSync(logFile, `${process.pid} ${specifier} -> ${resolved.url}\n`);
  }
  return resolved;
}
