/**
 * Many consumer groups on one stream (fan-out): G groups, one library consumer (RedisStreamsServer, defaults) per
 * group, all in this process (on a real deployment they are G services).
 *
 * Measures: XADD rate on a stream without groups and with G idle groups (a group costs nothing at write time),
 * Redis memory per group, the start-up time of G consumers, their idle cost (commands/s, CPU), and the fan-out
 * itself: M messages emitted, G x M deliveries, with the delivery rate and the CPU of Redis and of the consumers.
 */
import { lastValueFrom } from 'rxjs';
import { RedisStreamsClient, RedisStreamsServer } from 'nestjs-redis-streams-enterprise';
import { BenchRedis, CpuWindow, MB, envInt, fmt, rates, runPrefix, sleep, table, topCommands, type ScenarioReport } from './common.js';

const SETTINGS = {
  /** Entries of the XADD-rate measurement (pipelined 100 at a time). */
  xaddEntries: envInt('SCALE_XADD_ENTRIES', 20_000, 100),
  /** Messages emitted for the fan-out (each is delivered once per group). */
  fanoutMessages: envInt('SCALE_FANOUT_MESSAGES', 100, 1),
  idleMs: envInt('SCALE_IDLE_MS', 5_000, 500),
  stepTimeoutMs: envInt('SCALE_STEP_TIMEOUT_MS', 120_000, 1_000),
};

const PATTERN = 'scale.fanout';

interface GroupsFigures {
  groups: number;
  xaddPerSecondNoGroups: number;
  xaddPerSecondWithGroups: number;
  bytesPerGroup: number;
  startAllMs: number;
  connections: number;
  idleCommandsPerSecond: number;
  idleRedisCpuPercent: number;
  idleConsumerCpuPercent: number;
  idleTopCommands: string;
  fanoutTopCommands: string;
  fanoutMessages: number;
  deliveries: number;
  fanoutMs: number;
  deliveriesPerSecond: number;
  fanoutRedisCpuPercent: number;
  fanoutConsumerCpuPercent: number;
  rssMb: number;
  bytesPerGroupAfterFanout: number;
}

async function xaddRate(redis: BenchRedis, stream: string, entries: number): Promise<number> {
  const body = JSON.stringify({ pad: 'x'.repeat(100) });
  const started = performance.now();
  for (let i = 0; i < entries; i += 100) {
    const pipeline = redis.admin.pipeline();
    for (let j = i; j < Math.min(entries, i + 100); j++) pipeline.xadd(stream, '*', 'v', '1', 'id', `m${j}`, 'data', body);
    await pipeline.exec();
  }
  return entries / ((performance.now() - started) / 1_000);
}

async function measureGroups(redis: BenchRedis, groups: number): Promise<GroupsFigures> {
  const prefix = runPrefix(`groups${groups}`);
  const servers: RedisStreamsServer[] = [];
  const client = new RedisStreamsClient({ connection: { url: redis.url }, streams: { keyPrefix: prefix } });
  let deliveries = 0;
  try {
    // XADD rate without groups, then with G groups attached (nobody reading).
    const rateStream = `${prefix}:rate`;
    const xaddPerSecondNoGroups = await xaddRate(redis, rateStream, SETTINGS.xaddEntries);
    const memoryBeforeGroups = await redis.usedMemory();
    for (let i = 0; i < groups; i += 500) {
      const pipeline = redis.admin.pipeline();
      for (let j = i; j < Math.min(groups, i + 500); j++) pipeline.xgroup('CREATE', rateStream, `g${j}`, '$');
      await pipeline.exec();
    }
    const bytesPerGroup = ((await redis.usedMemory()) - memoryBeforeGroups) / groups;
    const xaddPerSecondWithGroups = await xaddRate(redis, rateStream, SETTINGS.xaddEntries);
    await redis.admin.unlink(rateStream);

    // G library consumers, one per group, on the pattern's stream.
    const memoryBeforeConsumers = await redis.usedMemory();
    const startStarted = performance.now();
    const handler = async () => {
      deliveries++;
    };
    for (let i = 0; i < groups; i += 50) {
      const batch: Promise<void>[] = [];
      for (let j = i; j < Math.min(groups, i + 50); j++) {
        const server = new RedisStreamsServer({
          connection: { url: redis.url },
          streams: { keyPrefix: prefix },
          consumer: { group: `g${j}`, consumerName: `c${j}`, groupStartId: '$' },
        });
        server.addHandler(PATTERN, handler, true);
        servers.push(server);
        batch.push(new Promise<void>((resolve, reject) => server.listen((error?: unknown) => (error ? reject(error) : resolve()))));
      }
      await Promise.all(batch);
    }
    const startAllMs = performance.now() - startStarted;
    const connections = Number((await redis.info('clients')).connected_clients);

    await sleep(1_000);
    const idleFrom = await redis.counters();
    const idleCalls = await redis.commandCalls();
    const idleCpu = new CpuWindow();
    await sleep(SETTINGS.idleMs);
    const idleTo = await redis.counters();
    const idle = rates(idleFrom, idleTo);
    const idleConsumerCpuPercent = idleCpu.percent();
    const idleTopCommands = topCommands(idleCalls, await redis.commandCalls(), (idleTo.at - idleFrom.at) / 1_000);

    // Fan-out: M emits, G x M deliveries.
    await client.connect();
    const expected = groups * SETTINGS.fanoutMessages;
    const fanFrom = await redis.counters();
    const fanCalls = await redis.commandCalls();
    const fanCpu = new CpuWindow();
    const started = performance.now();
    const inFlight = new Set<Promise<unknown>>();
    for (let n = 0; n < SETTINGS.fanoutMessages; n++) {
      const p: Promise<unknown> = lastValueFrom(client.emit(PATTERN, { n })).finally(() => inFlight.delete(p));
      inFlight.add(p);
      if (inFlight.size >= 16) await Promise.race(inFlight);
    }
    await Promise.all(inFlight);
    const deadline = Date.now() + SETTINGS.stepTimeoutMs;
    while (deliveries < expected && Date.now() < deadline) await sleep(5);
    const fanoutMs = performance.now() - started;
    const fanTo = await redis.counters();
    const fan = rates(fanFrom, fanTo);
    const fanoutTopCommands = topCommands(fanCalls, await redis.commandCalls(), (fanTo.at - fanFrom.at) / 1_000);
    const fanoutConsumerCpuPercent = fanCpu.percent();
    const rssMb = process.memoryUsage.rss() / MB;
    if (deliveries < expected) throw new Error(`fan-out incomplete: ${deliveries} of ${expected} deliveries in ${SETTINGS.stepTimeoutMs} ms`);
    // The messages stay in the stream (acknowledging does not delete); what a group adds is its consumer and position.
    const bytesPerGroupAfterFanout = ((await redis.usedMemory()) - memoryBeforeConsumers) / groups;

    return {
      groups,
      xaddPerSecondNoGroups,
      xaddPerSecondWithGroups,
      bytesPerGroup,
      startAllMs,
      connections,
      idleCommandsPerSecond: idle.commandsPerSecond,
      idleRedisCpuPercent: idle.redisCpuPercent,
      idleConsumerCpuPercent,
      idleTopCommands,
      fanoutTopCommands,
      fanoutMessages: SETTINGS.fanoutMessages,
      deliveries,
      fanoutMs,
      deliveriesPerSecond: deliveries / (fanoutMs / 1_000),
      fanoutRedisCpuPercent: fan.redisCpuPercent,
      fanoutConsumerCpuPercent,
      rssMb,
      bytesPerGroupAfterFanout,
    };
  } finally {
    await client.close();
    for (let i = 0; i < servers.length; i += 100) await Promise.all(servers.slice(i, i + 100).map((s) => s.close()));
    await redis.deletePrefix(prefix);
  }
}

export async function measureFanout(redis: BenchRedis, sizes: number[]): Promise<ScenarioReport> {
  const figures: GroupsFigures[] = [];
  for (const groups of sizes) {
    process.stdout.write(`  groups: ${groups.toLocaleString('en-US')} ...`);
    const started = Date.now();
    figures.push(await measureGroups(redis, groups));
    process.stdout.write(` ${((Date.now() - started) / 1_000).toFixed(1)} s\n`);
  }
  return {
    name: 'consumer groups on one stream (fan-out; one library consumer per group, all in this process)',
    table: table(
      [
        'groups',
        'XADD/s no groups',
        'XADD/s with groups',
        'Redis B/group',
        'start all ms',
        'connections',
        'idle cmd/s',
        'idle Redis CPU %',
        'idle consumers CPU %',
        'deliveries',
        'deliveries/s',
        'fan-out Redis CPU %',
        'fan-out consumers CPU %',
        'RSS MB',
      ],
      figures.map((f) => [
        fmt(f.groups),
        fmt(f.xaddPerSecondNoGroups),
        fmt(f.xaddPerSecondWithGroups),
        fmt(f.bytesPerGroup),
        fmt(f.startAllMs),
        fmt(f.connections),
        fmt(f.idleCommandsPerSecond),
        fmt(f.idleRedisCpuPercent),
        fmt(f.idleConsumerCpuPercent),
        fmt(f.deliveries),
        fmt(f.deliveriesPerSecond),
        fmt(f.fanoutRedisCpuPercent),
        fmt(f.fanoutConsumerCpuPercent),
        fmt(f.rssMb),
      ]),
    ),
    notes: [
      ...figures.map((f) => `${fmt(f.groups)} groups: idle commands ${f.idleTopCommands}; during fan-out ${f.fanoutTopCommands}`),
      'XADD/s: pipelined 100 at a time, ~130-byte entries, nobody reading; "with groups" has G idle groups on the stream.',
      'Each consumer holds 2 connections (command + blocking) and runs its own reclaimer, so idle cost grows with G.',
      'deliveries = messages x groups; every delivery is one entry read by XREADGROUP and acknowledged by XACK.',
    ],
    figures,
  };
}
