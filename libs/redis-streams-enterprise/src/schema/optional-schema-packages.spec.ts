import { OptionalDependencyMissingError } from '../errors/optional-dependency-missing.error.js';
import type { RequireFn } from '../runtime/optional-dependency.js';
import { loadDtoConverter } from './dto-schema.js';
import { loadAjvPackages } from './schema-validator.js';

/** The installed packages, as the library itself loads them (filled in beforeAll). */
const realPackages: Record<string, unknown> = {};

/** A require that finds the installed packages, except those in `missing`. */
function requireWithout(...missing: string[]): RequireFn {
  return (id) => {
    if (missing.includes(id.split('/')[0])) throw Object.assign(new Error(`Cannot find module '${id}'`), { code: 'MODULE_NOT_FOUND' });
    return realPackages[id];
  };
}

function caught(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  throw new Error('expected a throw');
}

describe('optional schema packages', () => {
  beforeAll(() => {
    const { Ajv, Ajv2020, addFormats } = loadAjvPackages();
    realPackages.ajv = { Ajv };
    realPackages['ajv/dist/2020.js'] = { Ajv2020 };
    realPackages['ajv-formats'] = addFormats;
    realPackages['class-validator-jsonschema'] = { targetConstructorToSchema: loadDtoConverter() };
  });

  it('ajv and ajv-formats load on demand and validate by both drafts, with formats', () => {
    const { Ajv, Ajv2020, addFormats } = loadAjvPackages();
    for (const ajv of [new Ajv({ allErrors: true }), new Ajv2020({ allErrors: true })]) {
      addFormats(ajv);
      const validate = ajv.compile({ type: 'string', format: 'email' });
      expect([validate('a@b.example'), validate('not an email')]).toEqual([true, false]);
    }
  });

  it.each([
    ['ajv', ['ajv']],
    ['ajv-formats', ['ajv-formats']],
    ['ajv', ['ajv', 'ajv-formats']],
  ])('schema validation without %s fails with OptionalDependencyMissingError (missing: %j)', (packageName, missing) => {
    expect(caught(() => loadAjvPackages(requireWithout(...missing)))).toMatchObject({
      name: 'OptionalDependencyMissingError',
      code: 'OPTIONAL_DEPENDENCY_MISSING',
      packageName,
      feature: 'schema validation',
      message: `schema validation needs the optional package "${packageName}", which is not installed (npm install ajv ajv-formats)`,
    });
  });

  it('a DTO class as a schema without class-validator-jsonschema fails with OptionalDependencyMissingError', () => {
    const error = caught(() => loadDtoConverter(requireWithout('class-validator-jsonschema')));
    expect(error).toBeInstanceOf(OptionalDependencyMissingError);
    expect(error).toMatchObject({
      code: 'OPTIONAL_DEPENDENCY_MISSING',
      packageName: 'class-validator-jsonschema',
      feature: 'a DTO class as a schema',
      message:
        'a DTO class as a schema needs the optional package "class-validator-jsonschema", which is not installed ' +
        '(npm install class-validator-jsonschema)',
    });
    expect(loadDtoConverter(requireWithout('ajv'))).toEqual(expect.any(Function)); // not needed for DTOs
  });
});
