/**
 * One jest run, two projects:
 * - "redis": unit specs (libs/**, apps/**, no Redis) and every end-to-end spec (test/e2e/**) against one redis-server.
 *   test/support/global-setup.mjs starts a throw-away redis-server on a free port unless REDIS_URL is set.
 * - "cluster": the end-to-end suites of CLUSTER_SUITES once more, unchanged, against a 3-master Redis Cluster.
 *   test/support/global-setup-cluster.mjs starts it (only when one of these suites runs) unless REDIS_CLUSTER_NODES
 *   is set; test/support/setup-cluster-target.ts makes testConfig() and rawRedis() use it (test/support/redis.ts).
 * NEST_COMPAT_DIR (set by .ci/nest11.sh) points @nestjs/* at a second install, to prove Nest 11 support.
 */
import { fileURLToPath } from 'node:url';

const compatDir = process.env.NEST_COMPAT_DIR;
const rootDir = fileURLToPath(new URL('.', import.meta.url));

/** The suites the cluster project runs (cluster-*.e2e-spec.ts start clusters of their own and run in "redis" only). */
export const CLUSTER_SUITES = [
  'delivery',
  'dead-letters',
  'retry-dead-letter',
  'replay',
  'schema',
  'schema-upcast',
  'schema-registry',
  'schema-nested',
  'schema-wiring',
  'schema-defects',
  'ordering',
  'retention',
  'future-ids',
  'compliance',
].map((name) => `<rootDir>/test/e2e/${name}.e2e-spec.ts`);

const testTimeout = 30_000;

/** What both projects share: the TypeScript/ESM transform and the module mapping. */
const shared = {
  rootDir,
  testEnvironment: 'node',
  extensionsToTreatAsEsm: ['.ts'],
  testTimeout,
  moduleNameMapper: {
    ...(compatDir ? { '^@nestjs/(common|core|microservices|testing)(.*)$': `${compatDir}/node_modules/@nestjs/$1$2` } : {}),
    '^nestjs-redis-streams-enterprise$': '<rootDir>/libs/redis-streams-enterprise/src/index.ts',
    '^nestjs-redis-streams-enterprise/testing$': '<rootDir>/libs/redis-streams-enterprise/src/testing/index.ts',
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

/** @type {import('jest').Config} */
export const redisProject = {
  ...shared,
  displayName: 'redis',
  testMatch: ['<rootDir>/test/**/*.e2e-spec.ts', '<rootDir>/libs/**/*.spec.ts', '<rootDir>/apps/**/*.spec.ts'],
  globalSetup: '<rootDir>/test/support/global-setup.mjs',
  globalTeardown: '<rootDir>/test/support/global-teardown.mjs',
  setupFiles: ['<rootDir>/test/support/setup-file.ts'],
};

/** @type {import('jest').Config} */
export const clusterProject = {
  ...shared,
  displayName: 'cluster',
  testMatch: CLUSTER_SUITES,
  globalSetup: '<rootDir>/test/support/global-setup-cluster.mjs',
  globalTeardown: '<rootDir>/test/support/global-teardown-cluster.mjs',
  setupFiles: ['<rootDir>/test/support/setup-file.ts', '<rootDir>/test/support/setup-cluster-target.ts'],
};

/** @type {import('jest').Config} */
export default {
  rootDir,
  testTimeout,
  reporters: ['default', '<rootDir>/test/support/summary-reporter.mjs'],
  projects: [redisProject, clusterProject],
};
