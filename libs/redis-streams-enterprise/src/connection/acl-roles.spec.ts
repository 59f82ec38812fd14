import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import { ACL_ROLE_COMMANDS, ACL_ROLES, aclCommandName, aclCommandsFor, aclSetUserArguments, aclSetUserCommand, libraryScriptOf, libraryScripts, scriptCommands } from './acl-roles.js';
import { defineScripts } from './scripts.js';

/** The scripts as scripts.ts registers them: name -> Lua. */
function registeredScripts(): Map<string, string> {
  const found = new Map<string, string>();
  defineScripts({ defineCommand: (name: string, { lua }: { lua: string }) => found.set(name, lua) } as unknown as Redis);
  return found;
}

describe('ACL roles', () => {
  it('knows every script scripts.ts registers, by source and by SHA-1', () => {
    const registered = registeredScripts();
    expect(libraryScripts().map((s) => s.name).sort()).toEqual([...registered.keys()].sort());
    for (const [name, lua] of registered) {
      expect(libraryScriptOf(lua)?.name).toBe(name);
      expect(libraryScriptOf(createHash('sha1').update(lua).digest('hex'))?.name).toBe(name);
    }
  });

  it('grants every command a script calls to every role that runs it', () => {
    for (const script of libraryScripts()) {
      expect(script.commands.length).toBeGreaterThan(0);
      for (const role of script.roles) {
        const granted = new Set(aclCommandsFor(role));
        expect({ script: script.name, role, missing: script.commands.filter((c) => !granted.has(c)) }).toEqual({ script: script.name, role, missing: [] });
      }
    }
  });

  it('reads commands and subcommands out of Lua', () => {
    expect(scriptCommands(`redis.call('TIME'); redis.call('XINFO', 'STREAM', KEYS[1]); redis.call('XGROUP', 'DELCONSUMER', KEYS[1]); redis.call(command, unpack(args))`)).toEqual([
      'time',
      'xinfo|stream',
      'xgroup|delconsumer',
    ]);
    expect(aclCommandName('CLIENT', 'SETNAME')).toBe('client|setname');
    expect(aclCommandName('xadd', 'key')).toBe('xadd');
  });

  it('names each command once per role, in ACL form', () => {
    for (const role of ACL_ROLES) {
      const names = ACL_ROLE_COMMANDS[role].map((c) => c.command);
      expect(new Set(names).size).toBe(names.length);
      for (const name of names) expect(name).toMatch(/^[a-z]+(\|[a-z]+)?$/);
    }
  });

  it('builds a fresh user limited to the prefix, with no channels and only the listed commands', () => {
    const args = aclSetUserArguments('producer', { user: 'orders-producer', password: 'pw', keyPrefix: 'prod:orders' });
    expect(args.slice(0, 7)).toEqual(['orders-producer', 'reset', 'on', '>pw', '~prod:orders:*', 'resetchannels', '-@all']);
    expect(args).toContain('+xadd');
    expect(args).toContain('+info');
    expect(args).not.toContain('+xreadgroup');
    expect(args).not.toContain('+cluster|slots');
    expect(args.some((a) => a.startsWith('+@') || a === '+script')).toBe(false);
    expect(aclSetUserCommand('operator', { user: 'ops', password: 'pw', keyPrefix: 'rse' })).toMatch(/^ACL SETUSER ops reset on >pw ~rse:\* resetchannels -@all \+info /);
  });

  it('merges roles without duplicates, adds the Cluster commands on request, and takes a password hash', () => {
    const both = aclSetUserArguments(['consumer', 'producer'], { user: 'svc', passwordSha256: 'A'.repeat(64), keyPrefix: 'rse', cluster: true });
    expect(both[3]).toBe(`#${'a'.repeat(64)}`);
    expect(new Set(both).size).toBe(both.length);
    expect(both).toEqual(expect.arrayContaining(['+xreadgroup', '+persist', '+cluster|slots', '+cluster|info']));
  });

  it('refuses what cannot be written into an ACL rule', () => {
    expect(() => aclSetUserArguments('consumer', { user: 'a b', password: 'pw', keyPrefix: 'rse' })).toThrow(/user name/);
    expect(() => aclSetUserArguments('consumer', { user: 'u', password: 'p w', keyPrefix: 'rse' })).toThrow(/white space/);
    expect(() => aclSetUserArguments('consumer', { user: 'u', password: 'pw', keyPrefix: 'rs*' })).toThrow(/keyPrefix/);
    expect(() => aclSetUserArguments('consumer', { user: 'u', keyPrefix: 'rse' })).toThrow(/exactly one/);
  });
});
