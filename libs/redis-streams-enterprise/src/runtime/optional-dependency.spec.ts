import { OptionalDependencyMissingError } from '../errors/optional-dependency-missing.error.js';
import { RedisStreamsError } from '../errors/redis-streams.error.js';
import { loadOptional, type OptionalFeature, type RequireFn } from './optional-dependency.js';

const FEATURE: OptionalFeature = { feature: 'schema validation', packages: ['ajv', 'ajv-formats'] };

/** What Node's require throws for a module that is not installed. */
function notFound(id: string): Error {
  return Object.assign(new Error(`Cannot find module '${id}'\nRequire stack:\n- /app/node_modules/x/index.js`), { code: 'MODULE_NOT_FOUND' });
}

/** A require that knows only `installed`; everything else is not found. */
const requireOnly =
  (installed: Record<string, unknown>): RequireFn =>
  (id) => {
    if (id in installed) return installed[id];
    throw notFound(id);
  };

function caught(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  throw new Error('expected a throw');
}

describe('loadOptional', () => {
  it('returns the module when it is installed', () => {
    const module = { Ajv: class {} };
    expect(loadOptional('ajv', FEATURE, requireOnly({ ajv: module }))).toBe(module);
  });

  it('names the missing package, the feature and what to install', () => {
    const error = caught(() => loadOptional('ajv', FEATURE, requireOnly({})));
    expect(error).toBeInstanceOf(OptionalDependencyMissingError);
    expect(error).toBeInstanceOf(RedisStreamsError);
    expect(error).toMatchObject({
      name: 'OptionalDependencyMissingError',
      code: 'OPTIONAL_DEPENDENCY_MISSING',
      packageName: 'ajv',
      feature: 'schema validation',
      packages: ['ajv', 'ajv-formats'],
      message: 'schema validation needs the optional package "ajv", which is not installed (npm install ajv ajv-formats)',
    });
    expect((error as Error).cause).toMatchObject({ code: 'MODULE_NOT_FOUND' });
  });

  it('names the package of a missing file (ajv/dist/2020.js) and of a scoped package', () => {
    expect(caught(() => loadOptional('ajv/dist/2020.js', FEATURE, requireOnly({})))).toMatchObject({ packageName: 'ajv' });
    const scoped: OptionalFeature = { feature: 'tracing', packages: ['@opentelemetry/api'] };
    expect(caught(() => loadOptional('@opentelemetry/api/build/x.js', scoped, requireOnly({})))).toMatchObject({ packageName: '@opentelemetry/api' });
  });

  it("names the feature's other package when the one asked for is installed but cannot load it (ajv-formats without ajv)", () => {
    const requireFn: RequireFn = () => {
      throw notFound('ajv');
    };
    expect(caught(() => loadOptional('ajv-formats', FEATURE, requireFn))).toMatchObject({ packageName: 'ajv', code: 'OPTIONAL_DEPENDENCY_MISSING' });
  });

  it('rethrows other failures as they are: a missing dependency of the package, a missing file, an error while loading', () => {
    const missingDependency = notFound('fast-uri');
    expect(caught(() => loadOptional('ajv', FEATURE, () => { throw missingDependency; }))).toBe(missingDependency);
    const missingFile = notFound('./compile/index.js');
    expect(caught(() => loadOptional('ajv', FEATURE, () => { throw missingFile; }))).toBe(missingFile);
    const broken = new SyntaxError('Unexpected token');
    expect(caught(() => loadOptional('ajv', FEATURE, () => { throw broken; }))).toBe(broken);
  });

  it("loads a real package with Node's require by default", () => {
    expect(loadOptional<{ Ajv: unknown }>('ajv', FEATURE).Ajv).toEqual(expect.any(Function));
  });
});
