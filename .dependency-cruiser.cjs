/**
 * The architecture of libs/redis-streams-enterprise/src, as rules that CI checks (`npm run lint:deps`).
 *
 * Layers, bottom to top; a layer imports only from layers below it (and from itself):
 *   1. ground floor  connection/ (keys, scripts, replies, connections), wire/ (the envelope format), runtime/
 *                    (sleeps, in-flight slots, backoff, deadlines, optional packages), errors/, config/,
 *                    observability/, redis-streams.constants.ts — imports no feature
 *   2. features      telemetry/ (OpenTelemetry tracer, metric exporters; loaded only when configured),
 *                    partitioning/, ordering/, schema/, replay/, dead-letter/, cluster/, retention/, claim-check/, compliance/,
 *                    payload-codec/ (encryption, compression), replication/ (StreamMirror: cross-region copies) —
 *                    built on the ground floor; they never import the consumers, producers or the Nest transport
 *   3. engine        consumer/ (reading loops, reclaimer, partitioned consumer), producer/ (writes, routing of
 *                    partitioned topics, replica waits, reply listening) — use features, know nothing of Nest
 *   4. transport     transport/ (the Nest server, client, context, decorators): the consume pipeline that runs
 *                    Nest handlers and settles their outcome, wired to the engine through small interfaces
 *   5. top           redis-streams.module*.ts (DI), cli/ (operator command), testing/ (helpers users import), health/ (the
 *                    Terminus indicator, over the server's status), console/ (the operator web console), index.ts
 */
const SRC = '^libs/redis-streams-enterprise/src/';
const GROUND = `${SRC}(connection|wire|runtime|errors|config|observability)/|${SRC}redis-streams\\.constants\\.ts$`;
const FEATURES = `${SRC}(partitioning|ordering|schema|replay|dead-letter|cluster|retention|claim-check|telemetry|payload-codec|replication|compliance)/`;
const ENGINE = `${SRC}(consumer|producer)/`;
const TRANSPORT = `${SRC}transport/`;
const TOP = `${SRC}(cli|testing|health|console)/|${SRC}redis-streams\\.module[^/]*\\.ts$|${SRC}index\\.ts$`;

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'ground-floor-imports-nothing-above',
      comment: 'Redis access, the wire format and runtime primitives must not depend on a feature, the engine or Nest transport.',
      severity: 'error',
      from: { path: GROUND },
      to: { path: `${FEATURES}|${ENGINE}|${TRANSPORT}|${TOP}` },
    },
    {
      name: 'features-stay-below-the-engine',
      comment: 'A feature never imports the consumers, producers, the Nest server/client or the module.',
      severity: 'error',
      from: { path: FEATURES },
      to: { path: `${ENGINE}|${TRANSPORT}|${TOP}` },
    },
    {
      name: 'engine-knows-no-nest-transport',
      comment: 'Consumers and producers are wired into the Nest server and client, never the other way round.',
      severity: 'error',
      from: { path: ENGINE },
      to: { path: `${TRANSPORT}|${TOP}` },
    },
    {
      name: 'transport-below-the-module',
      comment: 'The Nest transport does not import the module, the CLI or the testing helpers.',
      severity: 'error',
      from: { path: TRANSPORT },
      to: { path: TOP },
    },
    {
      name: 'no-index-inside',
      comment: 'Inside the package, import by relative path, never through index.ts (cycles, CONVENTIONS §3).',
      severity: 'error',
      from: { path: SRC, pathNot: `${SRC}index\\.ts$|${SRC}testing/index\\.ts$` },
      to: { path: `${SRC}index\\.ts$` },
    },
    {
      name: 'no-circular',
      comment: 'No import cycles between modules.',
      severity: 'error',
      from: { path: SRC },
      to: { circular: true },
    },
    {
      name: 'every-file-in-a-layer',
      comment: 'A new folder must be placed in a layer here first.',
      severity: 'error',
      from: { path: SRC, pathNot: `${GROUND}|${FEATURES}|${ENGINE}|${TRANSPORT}|${TOP}|\\.spec\\.ts$` },
      to: {},
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '\\.spec\\.ts$|\\.d\\.ts$|/dist/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
  },
};
