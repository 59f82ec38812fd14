/*
 * Run only by .ci/nest11.sh (config test/pack/jest.nest11.config.js), with NEST_COMPAT_DIR pointing at a second
 * install of Nest 11. Proves that the jest mapping really hands Nest 11 to the library and the tests, and that
 * Nest 11 shares the one rxjs / reflect-metadata / class-validator / class-transformer of the repo (two copies would
 * break isObservable/instanceof checks and metadata lookups).
 */
import { createRequire } from 'node:module';
import { realpathSync } from 'node:fs';
import { join, sep } from 'node:path';
import { Injectable } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { ClientProxy, Server } from '@nestjs/microservices';
import { Test } from '@nestjs/testing';
import { Observable } from 'rxjs';
import { RedisStreamsClient, RedisStreamsServer } from 'nestjs-redis-streams-enterprise';

const compatDir = process.env.NEST_COMPAT_DIR ?? '';
const compatModules = compatDir ? realpathSync(join(compatDir, 'node_modules')) + sep : '<NEST_COMPAT_DIR unset>';
const here = createRequire(import.meta.url);

/** A require() that resolves the way code inside the given Nest 11 package does (jest's resolver and registry). */
function requireFrom(pkg: string): NodeJS.Require {
  return createRequire(join(compatModules, '@nestjs', pkg, 'package.json'));
}

describe('Nest 11 compatibility mapping (NEST_COMPAT_DIR)', () => {
  it('is set and points at a second install', () => {
    expect(compatDir).not.toBe('');
  });

  it.each(['common', 'core', 'microservices', 'testing'])('maps @nestjs/%s to a 11.x copy inside NEST_COMPAT_DIR', (pkg) => {
    const resolved = realpathSync(here.resolve(`@nestjs/${pkg}/package.json`));
    const { version } = here(`@nestjs/${pkg}/package.json`) as { version: string };
    process.stdout.write(`nest11 probe: @nestjs/${pkg}@${version} from ${resolved}\n`);
    expect(resolved.startsWith(compatModules)).toBe(true);
    expect(version).toMatch(/^11\./);
  });

  it('gives the library the Nest 11 Server and ClientProxy', () => {
    const nest11 = requireFrom('microservices')('@nestjs/microservices') as { Server: unknown; ClientProxy: unknown };
    expect(Server).toBe(nest11.Server);
    expect(ClientProxy).toBe(nest11.ClientProxy);
    expect(RedisStreamsServer.prototype).toBeInstanceOf(Server);
    expect(RedisStreamsClient.prototype).toBeInstanceOf(ClientProxy);
  });

  it('loads one Nest 11 instance for common/core/testing as well', () => {
    expect(Injectable).toBe((requireFrom('common')('@nestjs/common') as { Injectable: unknown }).Injectable);
    expect(NestFactory).toBe((requireFrom('core')('@nestjs/core') as { NestFactory: unknown }).NestFactory);
    expect(Test).toBe((requireFrom('testing')('@nestjs/testing') as { Test: unknown }).Test);
  });

  it('lets Nest 11 core load the 11.x HTTP adapter (hybrid apps: NestFactory.create)', () => {
    const adapter = realpathSync(requireFrom('core').resolve('@nestjs/platform-express/package.json'));
    const { version } = requireFrom('core')('@nestjs/platform-express/package.json') as { version: string };
    expect(adapter.startsWith(compatModules)).toBe(true);
    expect(version).toMatch(/^11\./);
  });

  it.each(['rxjs', 'reflect-metadata', 'class-validator', 'class-transformer'])(
    'shares the repo copy of %s with Nest 11',
    (peer) => {
      for (const pkg of ['common', 'core', 'microservices']) {
        const fromNest11 = realpathSync(requireFrom(pkg).resolve(peer));
        expect(fromNest11).toBe(realpathSync(here.resolve(peer)));
        expect(fromNest11.startsWith(compatModules)).toBe(false);
      }
    },
  );

  it('hands Nest 11 the same rxjs Observable class the library uses', () => {
    const nest11Rxjs = requireFrom('microservices')('rxjs') as { Observable: unknown };
    expect(nest11Rxjs.Observable).toBe(Observable);
  });
});
