// The soak: a seeded, randomized run of every fault at once against a workload of child processes, then one checker.
// Usage: npm run test:soak -- --seed <n> --duration <time> [--topology single|replicated|cluster] [--features …]
// (see options.ts and the README's "Soak" section). Exit code 0: every check passed; 1: a violation (the table says
// which, and how to replay the seed); 2: the harness itself failed.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Logger } from '@nestjs/common';
import { check, formatTable, type Row } from './checker.js';
import { deadline, Harness, PREFIX, sleep } from './harness.js';
import { readLedgers } from './ledger.js';
import { describeFault, schedule } from './nemesis.js';
import { parseOptions } from './options.js';
import { SoakTopology } from './topology.js';
import { configFor, type SoakConnection } from './workload.js';

async function main(): Promise<number> {
  const opts = parseOptions(process.argv.slice(2));
  mkdirSync(join(opts.out, 'ledger'), { recursive: true });
  mkdirSync(join(opts.out, 'logs'), { recursive: true });
  // The harness's own library instances (admin managers, checker) log errors only; the nemesis log says the rest.
  Logger.overrideLogger(['error']);
  const replay = `npm run test:soak -- --seed ${opts.seed} --duration ${opts.durationMs / 1000}s --topology ${opts.topology} --features ${[...opts.features].join(',')}`;
  const topology = await SoakTopology.start(opts.topology);
  const h = new Harness(opts, topology);
  let verdict = 2;
  // Interrupted (Ctrl-C, a CI timeout): leave no process and no redis-server behind.
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      h.finished = true;
      for (const p of h.procs) if (p.running) p.child?.kill('SIGKILL');
      void topology.stop().finally(() => process.exit(2));
    });
  }
  try {
    h.plan();
    const faults = schedule({
      seed: opts.seed,
      durationMs: opts.durationMs,
      topology: opts.topology,
      features: opts.features,
      processes: h.procs.map((p) => p.name),
      redisFaults: topology.redisFaults,
      meanGapMs: opts.meanGapMs,
    });
    h.log.line(`soak seed=${opts.seed} topology=${opts.topology} duration=${opts.durationMs / 1000}s features=${[...opts.features].join(',')} out=${opts.out}`);
    h.log.line(`Redis: AOF appendfsync always; processes: ${h.procs.map((p) => p.name).join(' ')}`);
    h.log.line(`schedule (${faults.length} faults):\n${faults.map(describeFault).join('\n')}`);
    writeFileSync(join(opts.out, 'schedule.txt'), `${faults.map(describeFault).join('\n')}\n`);

    await h.registerSchemas();
    await Promise.all(h.procs.filter((p) => p.role === 'consumer').map((p) => p.start()));
    await Promise.all(h.procs.filter((p) => p.role === 'producer').map((p) => p.start()));
    const t0 = Date.now();
    h.log.line('workload running; nemesis on');

    const active = new Set<Promise<void>>();
    for (const fault of faults) {
      const wait = t0 + fault.at - Date.now();
      if (wait > 0) await sleep(wait);
      const p = h.run(fault).finally(() => active.delete(p));
      active.add(p);
    }
    const rest = t0 + opts.durationMs - Date.now();
    if (rest > 0) await sleep(rest);

    h.log.line(`healing: waiting for ${active.size} faults in progress`);
    await Promise.race([Promise.all(active), deadline(120_000)]);
    await topology.heal();
    for (const p of h.procs) {
      if (p.paused) p.child?.kill('SIGCONT');
      p.paused = false;
      if (!p.running && !p.busy) await p.start();
    }
    h.log.line('healed; stopping producers');
    await Promise.all(
      h.procs
        .filter((p) => p.role === 'producer')
        .map(async (p) => {
          p.expectExit = true;
          p.child?.send('stop');
          const exit = await Promise.race([p.exited, deadline(60_000).then(() => undefined)]);
          if (exit?.code !== 0) h.badShutdowns.push(`${p.name}: stop -> ${exit ? `code ${exit.code}` : 'no exit in 60 s'}`);
          if (!exit) await p.kill('SIGKILL');
        }),
    );

    // Drain: until everything resolved is delivered, every poison message is dead-lettered and nothing is pending.
    h.log.line('draining');
    const drainChecks = ['lost (resolved emit never delivered)', 'poison messages not dead-lettered', 'entries left pending / retries queued', 'entries never read by a group'];
    const drainUntil = Date.now() + opts.drainTimeoutMs;
    let quiet = 0;
    for (;;) {
      const checkStarted = Date.now();
      const rows = await runCheck(h, topology);
      const checkMs = Date.now() - checkStarted;
      const open = rows.filter((r) => drainChecks.includes(r.check) && r.ok === false);
      quiet = open.length === 0 ? quiet + 1 : 0;
      if (quiet >= 3 || Date.now() > drainUntil) {
        h.log.line(quiet >= 3 ? 'drained' : `drain timeout: ${open.map((r) => `${r.check}=${r.value}`).join(', ')}`);
        break;
      }
      await sleep(Math.max(2_000, 2 * checkMs)); // long runs have big ledgers: poll no more than half the time
    }
    h.log.line('stopping consumers (SIGTERM)');
    await Promise.all(
      h.procs
        .filter((p) => p.role === 'consumer')
        .map(async (p) => {
          const pid = p.child?.pid;
          const exit = await p.kill('SIGTERM');
          if (exit && exit.code !== 0) h.badShutdowns.push(`${p.name} pid ${pid}: final SIGTERM -> code ${exit.code} signal ${exit.signal}`);
          if (!exit && p.running) h.badShutdowns.push(`${p.name} pid ${pid}: final SIGTERM -> no exit in 20 s`);
        }),
    );
    h.finished = true;
    const rows = await runCheck(h, topology);
    const violations = rows.filter((r) => r.ok === false);
    const table = formatTable(rows);
    console.log(`\n${table}\n`);
    const summary = violations.length === 0 ? `SOAK PASSED seed=${opts.seed}` : `SOAK FAILED seed=${opts.seed}: ${violations.map((v) => v.check).join('; ')}\nreplay: ${replay}`;
    console.log(summary);
    writeFileSync(join(opts.out, 'result.json'), JSON.stringify({ seed: opts.seed, topology: opts.topology, durationMs: opts.durationMs, features: [...opts.features], faults: faults.length, rows, passed: violations.length === 0 }, null, 2));
    writeFileSync(join(opts.out, 'table.txt'), `${table}\n${summary}\n`);
    verdict = violations.length === 0 ? 0 : 1;
  } catch (error) {
    console.error(`soak harness failed (seed ${opts.seed}):`, error);
    verdict = 2;
  } finally {
    h.finished = true;
    for (const p of h.procs) if (p.running) await p.kill('SIGKILL');
    // The admin managers' close() is bounded: one that hangs is a library defect of its own, logged, not waited for.
    const adminClosed = await Promise.race([h.closeAdmin().then(() => true, () => true), deadline(10_000).then(() => false)]);
    if (!adminClosed) h.log.line('!! an admin manager (PartitioningManager / DeadLetterManager / ReplayManager) close() did not resolve in 10 s');
    if (!opts.keep) await topology.stop();
    else h.log.line('--keep: Redis left running');
    h.log.line('done');
  }
  return verdict;
}

async function runCheck(h: Harness, topology: SoakTopology): Promise<Row[]> {
  const { records, torn } = readLedgers(join(h.opts.out, 'ledger'));
  const redis = topology.directRedis();
  const scanNodes = await topology.scanNodes();
  const direct: SoakConnection = topology.cluster ? topology.clientConnection : { url: `redis://127.0.0.1:${(scanNodes[0].options.port)}` };
  const peak = h.procs.reduce((best, p) => (p.peakHeap > best.bytes ? { bytes: p.peakHeap, process: p.name } : best), { bytes: 0, process: '-' });
  try {
    return await check({
      prefix: PREFIX,
      records,
      torn,
      redis,
      scanNodes,
      adminConfig: configFor('plain', PREFIX, direct, 'single'),
      processes: { unexpectedExits: h.unexpectedExits, badShutdowns: h.badShutdowns, startFailures: h.startFailures, peakHeap: peak, restarts: h.restarts - h.procs.length },
      maxHeapMb: h.opts.maxHeapMb,
      maxDuplicateRatio: h.opts.maxDuplicateRatio,
      faultsRun: h.faultsRun,
      faultErrors: h.faultErrors,
    });
  } finally {
    redis.disconnect();
    for (const n of scanNodes) n.disconnect();
  }
}

process.exitCode = await main();
// Whatever is still open now (a library timer or socket) must not keep a finished soak alive; say so if it would.
setTimeout(() => {
  console.error(`soak: still alive 5 s after the end (${process.getActiveResourcesInfo().join(', ')}); exiting`);
  process.exit(process.exitCode);
}, 5_000).unref();
