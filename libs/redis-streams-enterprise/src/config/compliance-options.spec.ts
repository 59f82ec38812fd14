import { InvalidOptionsError } from '../errors/invalid-options.error.js';
import { validateOptions } from './validate-options.js';

describe('compliance options', () => {
  it('audit by default, with no subjects and no actor', () => {
    const { compliance } = validateOptions({});
    expect(compliance.audit).toMatchObject({ enabled: true, maxLen: 100_000 });
    expect(compliance.audit.retentionMs).toBeUndefined();
    expect(compliance.subjects).toEqual({});
    expect(compliance.actor).toBeUndefined();
  });

  it('keep an actor function as it is and freeze the subjects', () => {
    const actor = () => 'someone';
    const config = validateOptions({ compliance: { actor, subjects: { 'orders.*': { field: 'customer.id' }, 'tickets': { header: 'x-subject' } } } });
    expect(config.compliance.actor).toBe(actor);
    expect(config.compliance.subjects).toEqual({ 'orders.*': { field: 'customer.id' }, tickets: { header: 'x-subject' } });
    expect(Object.isFrozen(config.compliance.subjects)).toBe(true);
    expect(Object.isFrozen(config.compliance.subjects['orders.*'])).toBe(true);
    expect(Object.isFrozen(config.compliance.audit)).toBe(true);
  });

  it('refuse bad subject locations, a bad actor and a short maxLen, all in one error', () => {
    let error: unknown;
    try {
      validateOptions({
        compliance: {
          actor: 'line\nbreak',
          audit: { maxLen: 10 },
          subjects: { a: { field: 'x..y' }, b: { header: 'bad header' }, c: { field: 'x', header: 'y' } as never, d: {} as never },
        },
      });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(InvalidOptionsError);
    const message = (error as Error).message;
    expect(message).toContain('compliance.actor must be 1-200 characters without control characters');
    expect(message).toContain('compliance.audit.maxLen');
    // class-level rules first; the map's rules once those pass
    const second = (() => {
      try {
        validateOptions({ compliance: { subjects: { a: { field: 'x..y' }, b: { header: 'bad header' }, c: { field: 'x', header: 'y' } as never, d: {} as never } } });
      } catch (e) {
        return (e as Error).message;
      }
      return '';
    })();
    expect(second).toContain('compliance.subjects."a".field must be payload field names separated by dots');
    expect(second).toContain('compliance.subjects."b".header must be a header name');
    expect(second).toContain("compliance.subjects.\"c\" must be { field: '<payload path>' } or { header: '<header name>' }");
    expect(second).toContain('compliance.subjects."d" must be');
  });
});
