import { createRequire } from 'node:module';
import { OptionalDependencyMissingError } from '../errors/optional-dependency-missing.error.js';

/** How a package is loaded: Node's `require` in the library, a fake in specs (to simulate a missing package). */
export type RequireFn = (id: string) => unknown;

/** A feature built on optional peer packages (package.json `peerDependenciesMeta`). */
export interface OptionalFeature {
  /** What the user switched on, as error messages name it: `schema validation`. */
  readonly feature: string;
  /** The packages it needs, in the order to install them: `['ajv', 'ajv-formats']`. */
  readonly packages: readonly string[];
}

// The optional peers are CommonJS packages: require() loads them synchronously, on first use only, so an app that
// never uses the feature never loads (nor needs) them, and the synchronous call paths that use them stay synchronous.
const requireFromHere: RequireFn = createRequire(import.meta.url);

/**
 * Loads `id` (a package or a file of it, e.g. `ajv/dist/2020.js`) for `need.feature`. Node caches the module, so
 * calling this on every use costs a map lookup.
 * @throws OptionalDependencyMissingError when `id` itself, or one of the feature's packages it requires (ajv-formats
 *   requires ajv), is not installed. Anything else (a broken install, a missing dependency of the package) is rethrown.
 */
export function loadOptional<T>(id: string, need: OptionalFeature, requireFn: RequireFn = requireFromHere): T {
  try {
    return requireFn(id) as T;
  } catch (error) {
    const missing = missingPackageOf(error);
    if (missing !== undefined && (missing === packageNameOf(id) || need.packages.includes(missing))) {
      throw new OptionalDependencyMissingError(missing, need.feature, need.packages, { cause: error });
    }
    throw error;
  }
}

/** The package named by a MODULE_NOT_FOUND error (`Cannot find module 'ajv/dist/2020.js'` names `ajv`). */
function missingPackageOf(error: unknown): string | undefined {
  if (!(error instanceof Error) || (error as NodeJS.ErrnoException).code !== 'MODULE_NOT_FOUND') return undefined;
  const id = /Cannot find module '([^']+)'/.exec(error.message)?.[1];
  // A relative or absolute path is a file missing inside an installed package: a broken install, not ours to name.
  return id === undefined || id.startsWith('.') || id.startsWith('/') ? undefined : packageNameOf(id);
}

/** `ajv/dist/2020.js` is in package `ajv`; `@scope/name/x` in `@scope/name`. */
function packageNameOf(id: string): string {
  const parts = id.split('/');
  return id.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0];
}
