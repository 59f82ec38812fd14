import type { Redis, Cluster } from 'ioredis';
import { DeadLetterManager, ReplayManager, type RedisStreamsEnterpriseConfig } from 'nestjs-redis-streams-enterprise';
import type { LedgerRecord } from './ledger.js';
import { AT_LEAST_ONCE, effectsKey, MAX_PARTITIONS, TOPIC } from './workload.js';

/** What the harness knows about its processes, for the process checks. */
export interface ProcessReport {
  /** Exits the nemesis or the final stop did not cause (crashes), one line each. */
  readonly unexpectedExits: string[];
  /** SIGTERM'ed processes that did not exit 0 in time (graceful shutdown failed), one line each. */
  readonly badShutdowns: string[];
  /** Incarnations that exited before listening (listen() failed: Redis unreachable at start); restarted. */
  readonly startFailures: string[];
  /** Highest heapUsed (bytes) any consumer process reported, and the process. */
  readonly peakHeap: { bytes: number; process: string };
  readonly restarts: number;
}

export interface CheckInput {
  readonly prefix: string;
  readonly records: LedgerRecord[];
  readonly torn: number;
  readonly redis: Redis | Cluster;
  readonly scanNodes: Redis[];
  /** Config for the DeadLetterManager / ReplayManager the checker reads with (direct connection). */
  readonly adminConfig: RedisStreamsEnterpriseConfig;
  readonly processes: ProcessReport;
  readonly maxHeapMb: number;
  readonly maxDuplicateRatio: number;
  readonly faultsRun: number;
  readonly faultErrors: number;
}

export interface Row {
  readonly check: string;
  readonly value: number | string;
  /** Expected value or bound; empty for informational rows. */
  readonly expect: string;
  readonly ok: boolean | null;
  /** Examples of the violation (ids, ledger excerpts). */
  readonly detail?: string[];
}

interface Attempt {
  topic: string;
  id: string;
  key?: string;
  seq: number;
  poison: boolean;
  /** soak.checked: breaks the schema (also counted as poison: it must be dead-lettered). */
  invalid: boolean;
  outcome: 'ok' | 'definite-fail' | 'indeterminate';
  entry?: string;
}

interface Handling {
  topic: string;
  id: string;
  h: string;
  c: string;
  p: number;
  dc: number;
  eid?: string;
  start: number;
  end?: number;
  threw: boolean;
}

const sample = (items: Iterable<string>, n = 8) => [...items].slice(0, n);

/** Jepsen-style classification of every attempted message, plus the transport's own promises. */
export async function check(input: CheckInput): Promise<Row[]> {
  const attempts = new Map<string, Attempt>();
  const handlings = new Map<string, Handling>();
  let requests = 0;
  let replies = 0;
  const wrongReplies: string[] = [];
  const requestFailures = new Map<string, number>();
  const closeHung: string[] = [];
  for (const r of input.records) {
    switch (r.t) {
      case 'a':
        attempts.set(r.id as string, {
          topic: r.topic as string,
          id: r.id as string,
          key: r.key as string | undefined,
          seq: r.seq as number,
          poison: r.poison === true,
          invalid: r.invalid === true,
          outcome: 'indeterminate',
        });
        break;
      case 'ok': {
        const a = attempts.get(r.id as string);
        if (a) {
          a.outcome = 'ok';
          a.entry = r.entry as string;
        }
        break;
      }
      case 'f': {
        const a = attempts.get(r.id as string);
        if (a) a.outcome = r.definite ? 'definite-fail' : 'indeterminate';
        break;
      }
      case 's':
        handlings.set(r.h as string, {
          topic: r.topic as string,
          id: r.id as string,
          h: r.h as string,
          c: r.c as string,
          p: (r.p as number) ?? 0,
          dc: r.dc as number,
          eid: r.eid as string | undefined,
          start: r.ts as number,
          threw: false,
        });
        break;
      case 'e': {
        const h = handlings.get(r.h as string);
        if (h) h.end = r.ts as number;
        break;
      }
      case 'x': {
        const h = handlings.get(r.h as string);
        if (h) h.threw = true;
        break;
      }
      case 'ch':
        closeHung.push(`${r.file}: client #${r.client} close() still pending after 10 s`);
        break;
      case 'rq':
        requests++;
        break;
      case 'rp':
        replies++;
        if (r.ok !== true) wrongReplies.push(r.id as string);
        break;
      case 'rf':
        requestFailures.set(r.err as string, (requestFailures.get(r.err as string) ?? 0) + 1);
        break;
    }
  }

  // What counts as "delivered": plain: a handling that finished; ordered (exactly-once): a committed effect.
  const delivered = new Map<string, number>(); // id -> deliveries (plain: finished handlings; ordered: effects)
  const committed = new Set<string>(); // handling ids whose effect was committed
  for (const h of handlings.values()) if (AT_LEAST_ONCE.has(h.topic) && h.end !== undefined) delivered.set(h.id, (delivered.get(h.id) ?? 0) + 1);
  const effectLists: { topic: string; partition: number; items: { id: string; h: string }[] }[] = [];
  for (const topic of [TOPIC.keyed, TOPIC.global]) {
    for (let p = 0; p < MAX_PARTITIONS; p++) {
      const items = (await input.redis.lrange(effectsKey(input.prefix, topic, p), 0, -1)).map((e) => {
        const [id, h] = e.split('|');
        return { id, h };
      });
      if (items.length === 0) continue;
      effectLists.push({ topic, partition: p, items });
      for (const { id, h } of items) {
        delivered.set(id, (delivered.get(id) ?? 0) + 1);
        committed.add(h);
      }
    }
  }

  const rows: Row[] = [];
  const info = (check: string, value: number | string) => rows.push({ check, value, expect: '', ok: null });
  const zero = (check: string, items: string[], detail?: string[]) =>
    rows.push({ check, value: items.length, expect: '0', ok: items.length === 0, detail: detail ?? sample(items) });

  const all = [...attempts.values()];
  const byOutcome = (o: Attempt['outcome']) => all.filter((a) => a.outcome === o);
  info('emits attempted', all.length);
  info('emits resolved (ok)', byOutcome('ok').length);
  info('emits failed, definite', byOutcome('definite-fail').length);
  info('emits indeterminate', byOutcome('indeterminate').length);
  for (const topic of [TOPIC.plain, TOPIC.checked, TOPIC.keyed, TOPIC.global]) {
    const n = all.filter((a) => a.topic === topic && a.outcome === 'ok').length;
    if (n > 0) info(`  resolved on ${topic}`, n);
  }
  info('handlings started (all consumers)', handlings.size);

  // lost: every resolved emit must be delivered (non-poison) or dead-lettered (poison, checked below).
  const lost = all.filter((a) => a.outcome === 'ok' && !a.poison && !delivered.has(a.id)).map((a) => `${a.topic}:${a.id}`);
  zero('lost (resolved emit never delivered)', lost);
  const unexpected = [...delivered.keys()].filter((id) => !attempts.has(id));
  zero('unexpected (delivered, never attempted)', unexpected);
  const failedDelivered = all.filter((a) => a.outcome === 'definite-fail' && delivered.has(a.id)).map((a) => a.id);
  zero('delivered after a definite failure', failedDelivered);
  info('recovered (indeterminate, delivered)', all.filter((a) => a.outcome === 'indeterminate' && delivered.has(a.id)).length);

  // Duplicates: exactly-once topics must have none; the at-least-once topic is bounded.
  const eoDup = [...delivered].filter(([id, n]) => n > 1 && !AT_LEAST_ONCE.has(attempts.get(id)?.topic ?? '')).map(([id, n]) => `${id} x${n}`);
  zero('duplicated effects (exactly-once topics)', eoDup);
  const plainDelivered = [...delivered].filter(([id]) => AT_LEAST_ONCE.has(attempts.get(id)?.topic ?? ''));
  const plainDup = plainDelivered.reduce((sum, [, n]) => sum + n - 1, 0);
  const bound = Math.max(50, Math.ceil(plainDelivered.length * input.maxDuplicateRatio));
  rows.push({
    check: 'duplicated handlings (at-least-once)',
    value: plainDup,
    expect: `<=${bound}`,
    ok: plainDup <= bound,
    detail: plainDelivered.filter(([, n]) => n > 1).slice(0, 5).map(([id, n]) => `${id} x${n}`),
  });

  // Order from the effect lists (commit order, no clocks): per key (keyed) / per producer incarnation (global), in
  // each list, sequence numbers must increase. Only resolved emits have a promised place: a write whose emit failed
  // ambiguously (AmbiguousWriteError, the producer moved on) may still arrive later, after the producer's next emits —
  // Redis stores it when it gets there (docs/guarantees.md). Those are counted apart, not as violations.
  const listOrder: string[] = [];
  const lateIndeterminate = new Set<string>();
  for (const list of effectLists) {
    const last = new Map<string, number>();
    for (const { id } of list.items) {
      const a = attempts.get(id);
      if (!a?.key) continue;
      if (a.outcome !== 'ok') {
        if ((last.get(a.key) ?? -1) > a.seq) lateIndeterminate.add(a.id);
        continue;
      }
      const prev = last.get(a.key);
      if (prev !== undefined && a.seq < prev) listOrder.push(`${list.topic}#${list.partition}: ${a.key} seq ${a.seq} committed after ${prev}`);
      last.set(a.key, Math.max(prev ?? -1, a.seq));
    }
  }
  // Order across partitions (a key moves when the topic is rescaled) and against clocks: the committed handling of
  // seq s+1 of a key starts only after the committed handling of seq s ended (same host clock for every process).
  const commits = [...handlings.values()].filter((h) => committed.has(h.h));
  const byKey = new Map<string, { seq: number; h: Handling }[]>();
  for (const h of commits) {
    const a = attempts.get(h.id);
    if (!a?.key || a.outcome !== 'ok') continue;
    const k = `${a.topic}|${a.key}`;
    byKey.set(k, [...(byKey.get(k) ?? []), { seq: a.seq, h }]);
  }
  const keyOrder: string[] = [];
  for (const [k, list] of byKey) {
    list.sort((x, y) => x.seq - y.seq);
    for (let i = 1; i < list.length; i++) {
      const prev = list[i - 1].h;
      const cur = list[i].h;
      if (prev.end !== undefined && cur.start < prev.end) {
        keyOrder.push(`${k}: seq ${list[i].seq} started at ${cur.start} by ${cur.c} before seq ${list[i - 1].seq} ended at ${prev.end} (${prev.c})`);
      }
    }
  }
  // Gaps (Kafka's poll-skip): a later message of a key committed while an earlier resolved one never was.
  const gaps: string[] = [];
  const okByKey = new Map<string, Attempt[]>();
  for (const a of all) if (a.key && a.outcome === 'ok' && !AT_LEAST_ONCE.has(a.topic)) okByKey.set(`${a.topic}|${a.key}`, [...(okByKey.get(`${a.topic}|${a.key}`) ?? []), a]);
  for (const [k, list] of okByKey) {
    list.sort((x, y) => x.seq - y.seq);
    let missing: Attempt | undefined;
    for (const a of list) {
      if (!delivered.has(a.id)) missing ??= a;
      else if (missing) {
        gaps.push(`${k}: seq ${a.seq} (${a.id}) committed, earlier seq ${missing.seq} (${missing.id}, entry ${missing.entry}) never`);
        break;
      }
    }
  }
  info('indeterminate emits stored after later emits', lateIndeterminate.size);
  zero('order violations (per key / per producer)', [...listOrder, ...keyOrder, ...gaps]);
  // Global order: committed handlings of the global topic never overlap.
  const globalCommits = commits.filter((h) => h.topic === TOPIC.global).sort((a, b) => a.start - b.start);
  const globalOverlaps: string[] = [];
  let latest: Handling | undefined;
  for (const h of globalCommits) {
    if (latest?.end !== undefined && h.start < latest.end) globalOverlaps.push(`${h.id}@${h.c} started ${h.start} inside ${latest.id}@${latest.c} (ended ${latest.end})`);
    if (!latest || (h.end ?? 0) > (latest.end ?? 0)) latest = h;
  }
  zero('global order: overlapping handlings', globalOverlaps);
  // Single owner per partition: committed handlings of one partition by two consumers never overlap in time.
  const owners: string[] = [];
  const byPartition = new Map<string, Handling[]>();
  for (const h of commits) byPartition.set(`${h.topic}#${h.p}`, [...(byPartition.get(`${h.topic}#${h.p}`) ?? []), h]);
  for (const [partition, list] of byPartition) {
    list.sort((a, b) => a.start - b.start);
    let last: Handling | undefined;
    for (const h of list) {
      if (last && last.c !== h.c && last.end !== undefined && h.start < last.end) owners.push(`${partition}: ${last.c}/${last.id} and ${h.c}/${h.id}`);
      if (!last || (h.end ?? 0) > (last.end ?? 0)) last = h;
    }
  }
  zero('partition owned by two consumers at once', owners);

  // Dead letters: exactly the poison messages (each at least once; duplicates reported).
  const deadLetters = new DeadLetterManager(input.adminConfig);
  const replays = new ReplayManager(input.adminConfig);
  try {
    const letters = [...(await deadLetters.list(TOPIC.plain, { limit: 1_000_000 })), ...(await deadLetters.list(TOPIC.checked, { limit: 1_000_000 }))];
    const dlqIds = new Map<string, number>();
    const reasons = new Map<string, string>();
    const wrongReason: string[] = [];
    for (const l of letters) {
      const id = (l.data as { id?: string } | null)?.id ?? `?${l.dlqId}`;
      dlqIds.set(id, (dlqIds.get(id) ?? 0) + 1);
      reasons.set(id, `${l.reason}/${l.errorName}: ${l.errorMessage.slice(0, 60)} (deliveries ${l.deliveries})`);
      if (attempts.get(id)?.invalid && l.reason !== 'schema-invalid') wrongReason.push(`${id}: ${reasons.get(id)}`);
    }
    // An invalid payload never reaches its handler: validation happens before it, and dead-letters it.
    const invalidHandled = [...handlings.values()].filter((h) => attempts.get(h.id)?.invalid).map((h) => `${h.id}@${h.c}`);
    zero('schema-invalid messages handled', invalidHandled);
    zero('schema-invalid dead letters with another reason', wrongReason);
    const poisonResolved = all.filter((a) => a.poison && a.outcome === 'ok').map((a) => a.id);
    const missing = poisonResolved.filter((id) => !dlqIds.has(id));
    const notPoison = [...dlqIds.keys()].filter((id) => !attempts.get(id)?.poison);
    info('dead letters (entries)', letters.length);
    zero('poison messages not dead-lettered', missing);
    zero('dead letters that are not poison', notPoison, notPoison.slice(0, 5).map((id) => `${id}: ${reasons.get(id)}`));
    info('duplicated dead letters', [...dlqIds.values()].reduce((s, n) => s + n - 1, 0));

    // Replay copies: the copy stream holds each source message at most once and nothing never attempted.
    const copied = new Map<string, number>();
    await replays.replayMessages({
      streamName: TOPIC.replayed,
      dryRun: true,
      filter: (m) => {
        const id = (m.data as { id?: string } | null)?.id ?? `?${m.entryId}`;
        copied.set(id, (copied.get(id) ?? 0) + 1);
        return true;
      },
    });
    info('replayed copies', [...copied.values()].reduce((s, n) => s + n, 0));
    // The copy is idempotent per source entry (rse.replay.from); two source entries of one message (a client
    // re-sent an XADD whose reply was lost) are two copies, reported but not a replay defect.
    const fromCount = new Map<string, number>();
    const copyKey = `${input.prefix}:{${TOPIC.replayed}}`;
    for (let start = '-'; ; ) {
      const page = await input.redis.xrange(copyKey, start, '+', 'COUNT', 1000);
      for (const [, fields] of page) {
        const i = fields.indexOf('rse.replay.from');
        const from = i >= 0 ? fields[i + 1] : '?';
        fromCount.set(from, (fromCount.get(from) ?? 0) + 1);
      }
      if (page.length < 1000) break;
      start = `(${page[page.length - 1][0]}`;
    }
    zero('replay: one source entry copied twice', [...fromCount].filter(([, n]) => n > 1).map(([f, n]) => `${f} x${n}`));
    info('replay: copies of duplicated source entries', [...copied].filter(([, n]) => n > 1).reduce((s, [, n]) => s + n - 1, 0));
    // Source-side duplicates: entries of the plain stream that carry the same message (XADD re-sent by the client).
    const sourceIds = new Map<string, number>();
    for (let start = '-'; ; ) {
      const page = await input.redis.xrange(`${input.prefix}:{${TOPIC.plain}}`, start, '+', 'COUNT', 1000);
      for (const [, fields] of page) {
        const i = fields.indexOf('data');
        if (i < 0) continue;
        const id = (JSON.parse(fields[i + 1]) as { id?: string }).id ?? '?';
        if (attempts.get(id)?.poison) continue; // a redrive re-adds a poison message on purpose
        sourceIds.set(id, (sourceIds.get(id) ?? 0) + 1);
      }
      if (page.length < 1000) break;
      start = `(${page[page.length - 1][0]}`;
    }
    info('plain stream: entries duplicating a message', [...sourceIds.values()].reduce((s, n) => s + n - 1, 0));
    zero('replay copies never attempted', [...copied.keys()].filter((id) => !attempts.has(id)));
  } finally {
    await deadLetters.close();
    await replays.close();
  }

  // Nothing left pending: every group of every stream of the run has no pending entry and no lag, no retry queued.
  const pendingLeft: string[] = [];
  const pendingDetail: string[] = [];
  const lagLeft: string[] = [];
  let streams = 0;
  for (const node of input.scanNodes) {
    for (const [type, visit] of [
      ['stream', async (key: string) => {
        streams++;
        const groups = (await node.call('XINFO', 'GROUPS', key)) as unknown[];
        for (const g of groups) {
          const fields = toMap(g);
          if (Number(fields.pending) > 0) {
            pendingLeft.push(`${key} group=${fields.name} pending=${fields.pending}`);
            // Which entries, owned by whom, and what the ledgers say about them (for the report).
            const entries = (await node.xpending(key, String(fields.name), '-', '+', 5)) as [string, string, number, number][];
            for (const [id, consumer, idleMs, deliveries] of entries) {
              const seen = [...handlings.values()].filter((h) => h.eid === id).map((h) => `${h.c} dc=${h.dc}${h.end ? ' ended' : ''}`);
              const emitted = all.find((a) => a.entry === id);
              pendingDetail.push(`  ${key} ${id} owner=${consumer} idle=${idleMs}ms deliveries=${deliveries} message=${emitted?.id ?? '?'} handlings=[${seen.join('; ')}]`);
            }
          }
          // Unread entries: any entry after the group's last-delivered-id. (XINFO's `lag` is not used: Redis 7.0 does
          // not keep it exact across failovers and slot migrations, where it stays > 0 with everything read.)
          const unread = await node.xrange(key, `(${String(fields['last-delivered-id'])}`, '+', 'COUNT', 100);
          const messages = unread.filter(([, f]) => !f.includes('rse.control'));
          if (messages.length > 0) lagLeft.push(`${key} group=${fields.name}: ${messages.length}${messages.length === 100 ? '+' : ''} entries after last-delivered-id ${fields['last-delivered-id']} (XINFO lag ${fields.lag})`);
        }
      }],
      ['zset', async (key: string) => {
        const n = await node.zcard(key);
        if (key.includes(':retry') && n > 0) pendingLeft.push(`${key} retries=${n}`);
      }],
    ] as const) {
      let cursor = '0';
      do {
        const [next, keys] = (await node.call('SCAN', cursor, 'MATCH', `${input.prefix}:*`, 'TYPE', type, 'COUNT', '1000')) as [string, string[]];
        cursor = next;
        for (const key of keys) await visit(key);
      } while (cursor !== '0');
    }
  }
  info('streams checked for pending', streams);
  zero('entries left pending / retries queued', pendingLeft, [...pendingLeft.slice(0, 8), ...pendingDetail.slice(0, 10)]);
  zero('entries never read by a group', lagLeft);

  info('requests sent', requests);
  info('replies', replies);
  info('request failures', [...requestFailures].map(([e, n]) => `${e}:${n}`).join(' ') || 0);
  zero('wrong replies', wrongReplies);

  zero('processes that died on their own', input.processes.unexpectedExits);
  info('starts refused (Redis unreachable), retried', input.processes.startFailures.length);
  zero('SIGTERM without a clean exit', input.processes.badShutdowns);
  zero('client close() never resolved', closeHung);
  const heapMb = Math.round(input.processes.peakHeap.bytes / 1_048_576);
  rows.push({ check: 'peak heap MB (workload processes)', value: heapMb, expect: `<${input.maxHeapMb}`, ok: heapMb < input.maxHeapMb, detail: [input.processes.peakHeap.process] });
  info('process restarts', input.processes.restarts);
  info('faults run (errors)', `${input.faultsRun} (${input.faultErrors})`);
  info('torn ledger lines', input.torn);
  return rows;
}

/** A RESP2 flat array or RESP3 map of XINFO GROUPS into an object. */
function toMap(reply: unknown): Record<string, unknown> {
  if (reply instanceof Map) return Object.fromEntries(reply);
  if (Array.isArray(reply)) {
    const out: Record<string, unknown> = {};
    for (let i = 0; i + 1 < reply.length; i += 2) out[String(reply[i])] = reply[i + 1];
    return out;
  }
  return (reply ?? {}) as Record<string, unknown>;
}

export function formatTable(rows: Row[]): string {
  const w = Math.max(...rows.map((r) => r.check.length)) + 2;
  const lines = [`${'check'.padEnd(w)}${'value'.padStart(10)}  ${'expect'.padEnd(8)} verdict`];
  for (const r of rows) {
    const verdict = r.ok === null ? '' : r.ok ? 'ok' : 'VIOLATION';
    lines.push(`${r.check.padEnd(w)}${String(r.value).padStart(10)}  ${r.expect.padEnd(8)} ${verdict}`);
    if (r.ok === false) for (const d of r.detail ?? []) lines.push(`    ${d}`);
  }
  return lines.join('\n');
}
