import { createHash } from 'node:crypto';
import { lastValueFrom } from 'rxjs';
import { AuditTrail, ComplianceManager, RedisStreamsClient, ReplayManager } from 'nestjs-redis-streams-enterprise';
import { StepReport, type Tour } from './tour-checks.js';

/** A topic that carries personal data: each message names its customer (compliance.subjects, see tour.config.ts). */
export const CUSTOMERS_CONTACTED = 'customers.contacted';
/** Where replay copies of it go (a staging copy; erasure must find the copies too). */
const CONTACTS_STAGING = 'customers.contacted.staging';
const ERASED = 'cust-grace';
const KEPT = 'cust-alan';
const PER_CUSTOMER = 3;

/**
 * Step 8: erasure by subject (GDPR right to erasure). Messages of two customers on a partitioned topic, copied once by
 * a replay into a staging stream; the erasure of one customer deletes every entry of hers (live partitions and the
 * replay copies), proves it with a scan afterwards, leaves the other customer's entries alone, and is recorded in the
 * audit trail with the subject hashed.
 */
export async function runErasureStep(tour: Tour): Promise<StepReport> {
  const report = new StepReport('tour 8 erasure');
  const client = tour.producer.get(RedisStreamsClient);
  const compliance = tour.producer.get(ComplianceManager);
  const replay = tour.producer.get(ReplayManager);

  tour.log(`Tour 8: erasure by subject on "${CUSTOMERS_CONTACTED}" (subject: payload field customerId)`);
  for (let n = 0; n < PER_CUSTOMER * 2; n++) {
    const customerId = n % 2 === 0 ? ERASED : KEPT;
    await lastValueFrom(client.emit(CUSTOMERS_CONTACTED, { accountId: customerId, customerId, channel: 'email', note: `contact ${n}` }));
  }
  await replay.replayMessages({ streamName: CUSTOMERS_CONTACTED, target: { stream: CONTACTS_STAGING } }, { actor: 'tour-staging-refresh' });
  const before = await compliance.erase({ subject: ERASED, topics: [CUSTOMERS_CONTACTED], dryRun: true });
  tour.log(`  dry run: ${before.totals.matched} entries of ${ERASED} (${before.totals.replayCopies} of them replay copies) in ${before.streams.length} streams`);

  const erased = await compliance.erase({ subject: ERASED, topics: [CUSTOMERS_CONTACTED] }, { actor: 'tour-dpo', correlationId: 'tour-erasure' });
  const verification = erased.verification;
  tour.log(
    `  erased: ${erased.totals.deleted} entries deleted (${erased.totals.replayCopies} replay copies) in ${erased.streams.length} streams, ` +
      `${erased.totals.pendingAcked} pending acknowledged, ${erased.unreadableCount} unreadable; ` +
      `verification scan: ${verification?.remaining ?? '?'} remain of ${verification?.entriesScanned ?? '?'} entries read again`,
  );
  const kept = await compliance.erase({ subject: KEPT, topics: [CUSTOMERS_CONTACTED], dryRun: true });
  tour.log(`  the other customer (${KEPT}) still has ${kept.totals.matched} entries`);
  const trail = new AuditTrail(compliance.config, async () => tour.redis);
  const audited = (await trail.read({ since: Date.now() - 600_000, count: 1_000 })).find((e) => e.correlationId === 'tour-erasure');
  const hash = createHash('sha256').update(ERASED).digest('hex');
  tour.log(`  audit trail: ${audited?.action} by ${audited?.actor}, subjectSha256 ${String(audited?.params.subjectSha256).slice(0, 16)}…, deleted ${audited?.counts.deleted}`);

  const expected = PER_CUSTOMER * 2; // live entries and their replay copies
  report.row(
    `erase ${ERASED}`,
    `${erased.totals.deleted} / ${expected} deleted (${erased.totals.replayCopies} copies), ${verification?.remaining ?? '?'} remain after the scan`,
    before.totals.matched === expected && erased.totals.deleted === expected && erased.totals.replayCopies === PER_CUSTOMER && verification?.clean === true,
    'the erasure did not delete every entry and copy of the subject, or the scan afterwards found some',
  );
  report.row(
    `other subject and audit`,
    `${KEPT}: ${kept.totals.matched} / ${expected} kept; audited as ${audited?.action ?? 'nothing'} (subject hashed)`,
    kept.totals.matched === expected && audited?.params.subjectSha256 === hash && !JSON.stringify(audited).includes(ERASED),
    'the other subject lost entries, or the erasure was not audited with the subject hashed',
  );
  return report;
}
