import type { RedisStreamsEnterpriseConfig } from '../config/redis-streams.options.js';
import { CliError, configOf, type CliIo, type GlobalOptions } from './cli-context.js';
import { InvalidArgumentError, option, type CommandSpec, type Invocation } from './command-line.js';
import { line, table, writeJson } from './format.js';
import { parsePositiveInt, parsePrefix } from './parse.js';

interface MirrorFlags extends GlobalOptions {
  readonly sourceUrl: string;
  readonly sourceRegion: string;
  readonly region: string;
  readonly topic: string[];
  readonly sourcePrefix?: string;
  readonly name?: string;
  readonly batchSize?: number;
  readonly startFrom?: 'beginning' | 'end';
}

function parseStartFrom(value: string): 'beginning' | 'end' {
  if (value !== 'beginning' && value !== 'end') throw new InvalidArgumentError("expected 'beginning' or 'end'.");
  return value;
}

function configFor(flags: MirrorFlags): RedisStreamsEnterpriseConfig {
  return {
    ...configOf(flags),
    replication: {
      region: flags.region,
      mirrors: [
        {
          name: flags.name ?? `from-${flags.sourceRegion}`,
          source: { region: flags.sourceRegion, connection: { url: flags.sourceUrl }, ...(flags.sourcePrefix ? { keyPrefix: flags.sourcePrefix } : {}) },
          topics: flags.topic,
          ...(flags.batchSize === undefined ? {} : { batchSize: flags.batchSize }),
          ...(flags.startFrom === undefined ? {} : { startFrom: flags.startFrom }),
        },
      ],
    },
  };
}

/** `mirror`: copy topics of another region's Redis into this one (--url) until Ctrl-C or SIGTERM. */
export function mirrorCommand(io: CliIo): CommandSpec {
  return {
    name: 'mirror',
    summary: "copy topics of another region's Redis into this one, continuously (cross-region replication)",
    description:
      "copy the topics (patterns or globs, partitioned topics included) of another region's Redis (--source-url) into " +
      'the Redis of --url, exactly once per entry and in order per stream, until Ctrl-C or SIGTERM. A restarted mirror ' +
      'resumes from the checkpoint stored beside each copied stream; entries that came from a third region are not copied on.',
    options: [
      option('--source-url <redis-url>', 'Redis of the region to copy from', { required: true }),
      option('--source-region <region>', 'name of the region to copy from', { required: true }),
      option('--region <region>', 'name of this region (the Redis of --url)', { required: true }),
      option('-t, --topic <pattern...>', 'topic(s) to copy: patterns or globs such as "orders.*"', { required: true }),
      option('--source-prefix <keyPrefix>', 'key prefix of the source region (default: --prefix)', { parse: parsePrefix }),
      option('--name <name>', 'name of the mirror in logs and status (default: from-<source region>)'),
      option('--batch-size <n>', 'entries read and written per stream and step (default 100)', { parse: parsePositiveInt }),
      option('--start-from <beginning|end>', 'where a stream without a checkpoint starts (default beginning)', { parse: parseStartFrom }),
    ],
    action: (invocation) => mirror(io, invocation),
  };
}

async function mirror(io: CliIo, { flags: parsed }: Invocation): Promise<void> {
  const flags = parsed as unknown as MirrorFlags;
  if (!io.onInterrupt) throw new CliError('mirror runs until it is interrupted, and this environment cannot interrupt it');
  if (flags.sourceRegion === flags.region) throw new CliError('--source-region must differ from --region (a mirror copies from another region)');
  const { StreamMirror } = await import('../replication/stream-mirror.js');
  const streamMirror = new StreamMirror(configFor(flags)); // validates (InvalidOptionsError) before any I/O
  let stop: () => void = () => undefined;
  const stopped = new Promise<void>((resolve) => (stop = resolve));
  const unregister = io.onInterrupt(() => stop());
  try {
    await streamMirror.start();
    const status = streamMirror.getStatus();
    if (!flags.json) line(io.stderr, `Mirroring ${status.topics.length} stream(s) from region ${flags.sourceRegion} into region ${flags.region}; Ctrl-C or SIGTERM stops`);
    await stopped;
  } finally {
    unregister();
    await streamMirror.close();
  }
  const status = streamMirror.getStatus();
  if (flags.json) {
    writeJson(io.stdout, status);
    return;
  }
  const rows = status.topics.map((t) => [t.source, t.target, String(t.copied), t.lag === null ? '-' : String(t.lag), t.lastSourceId ?? '-']);
  line(io.stdout, rows.length === 0 ? 'No stream was mirrored.' : table(['SOURCE', 'TARGET', 'COPIED', 'LAG', 'LAST SOURCE ID'], rows));
}
