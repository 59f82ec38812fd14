/**
 * One jest run covers unit specs (libs/**, no Redis) and end-to-end specs (test/e2e/**, real Redis).
 * test/support/global-setup.mjs starts a throw-away redis-server on a free port unless REDIS_URL is set.
 * NEST_COMPAT_DIR (set by .ci/nest11.sh) points @nestjs/* at a second install, to prove Nest 11 support.
 * @type {import('jest').Config}
 */
const compatDir = process.env.NEST_COMPAT_DIR;

export default {
  testEnvironment: 'node',
  rootDir: '.',
  testMatch: ['<rootDir>/test/**/*.e2e-spec.ts', '<rootDir>/libs/**/*.spec.ts', '<rootDir>/apps/**/*.spec.ts'],
  globalSetup: '<rootDir>/test/support/global-setup.mjs',
  globalTeardown: '<rootDir>/test/support/global-teardown.mjs',
  setupFiles: ['<rootDir>/test/support/setup-file.ts'],
  extensionsToTreatAsEsm: ['.ts'],
  testTimeout: 30_000,
  reporters: ['default', '<rootDir>/test/support/summary-reporter.mjs'],
  moduleNameMapper: {
    ...(compatDir ? { '^@nestjs/(common|core|microservices|testing)(.*)$': `${compatDir}/node_modules/@nestjs/$1$2` } : {}),
    '^nestjs-redis-streams-enterprise$': '<rootDir>/libs/redis-streams-enterprise/src/index.ts',
    '^(\\.{1,2}/.*)\\.js$': '$1',
  },
  transform: {
    '^.+\\.ts$': [
      '@swc/jest',
      {
        jsc: {
          parser: { syntax: 'typescript', decorators: true },
          transform: { legacyDecorator: true, decoratorMetadata: true },
          target: 'es2022',
        },
        module: { type: 'es6' },
        sourceMaps: 'inline',
      },
    ],
  },
};
