/**
 * Jest config for .ci/nest11.sh only: the root config's "redis" project (whose moduleNameMapper sends @nestjs/* to
 * NEST_COMPAT_DIR) plus the Nest 11 probe test/pack/*.compat-spec.ts, which the default `npm test` never runs.
 * It runs the real-Redis e2e suites and the library's unit specs against the second (Nest 11) install, on the single
 * server only: the root's "cluster" project repeats e2e suites on a Redis Cluster, which proves nothing more about Nest
 * (nor do the soak and the cluster-* suites, left out below).
 * @type {import('jest').Config}
 */
import { fileURLToPath } from 'node:url';
import base, { redisProject } from '../../jest.config.js';

if (!process.env.NEST_COMPAT_DIR) {
  throw new Error('test/pack/jest.nest11.config.js needs NEST_COMPAT_DIR (run it through .ci/nest11.sh)');
}

export default {
  ...base,
  rootDir: fileURLToPath(new URL('../..', import.meta.url)),
  projects: [
    {
      ...redisProject,
      testMatch: [
        '<rootDir>/test/pack/**/*.compat-spec.ts',
        '<rootDir>/test/e2e/**/*.e2e-spec.ts',
        '<rootDir>/libs/**/*.spec.ts',
      ],
      // What only proves Redis behaviour, not the Nest version, runs once, in `npm test`: the soak (its workload is
      // plain Node processes on the built library) and the suites that start Redis Clusters of their own.
      testPathIgnorePatterns: ['/node_modules/', '/test/e2e/soak\\.e2e-spec\\.ts$', '/test/e2e/cluster-[^/]*\\.e2e-spec\\.ts$'],
    },
  ],
};
