// setupFiles of the "cluster" jest project: this test file runs against the Redis Cluster of REDIS_CLUSTER_NODES
// (see test/support/redis.ts). jest gives each test file its own copy of process.env, so this stays in this file.
process.env.RSE_TEST_TARGET = 'cluster';
