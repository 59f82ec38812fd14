import { PartitioningManager, ReplayManager } from 'nestjs-redis-streams-enterprise';
import { fmt } from '../summary.js';
import { ACCOUNTS, ACCOUNTS_MOVED, AccountMoves, MOVES_PER_ACCOUNT, accountId, perAccountOrder, type Move } from './ordering.step.js';
import { isDrained, shortName, StepReport, type Tour } from './tour-checks.js';

const REPLAY_WINDOW_MINUTES = 5;

/**
 * Step 4: replays the last minutes of step 1's topic. First a dry run filtered to one account (counts only), then
 * to the handlers of the first consumer: every move again, in per-account order, with `ctx.isReplay()` true and
 * without touching the consumer group (nothing acknowledged, claimed or retried).
 */
export async function runReplayStep(tour: Tour): Promise<StepReport> {
  const report = new StepReport('tour 4 replay');
  const [consumer] = tour.consumers;
  // Replaying to handlers needs the app whose server is listening: inject ReplayManager there.
  const replay = consumer.app.get(ReplayManager);
  const moves = consumer.app.get(AccountMoves);
  const partitioning = tour.producer.get(PartitioningManager);
  const startTime = Date.now() - REPLAY_WINDOW_MINUTES * 60_000;
  const oneAccount = accountId(7);
  const liveBefore = moves.live.length;

  tour.log(`Tour 4/5: replay the last ${REPLAY_WINDOW_MINUTES} minutes of "${ACCOUNTS_MOVED}" (all ${await partitionCount(partitioning)} partitions, merged in time order)`);
  const dry = await replay.replayMessages({
    streamName: ACCOUNTS_MOVED,
    startTime,
    filter: (m) => (m.data as Move).accountId === oneAccount,
    dryRun: true,
  });
  tour.log(`  dry run, filter accountId=${oneAccount}: messagesReplayed ${dry.messagesReplayed}, skipped ${dry.skipped} (nothing delivered)`);

  const result = await replay.replayMessages({ streamName: ACCOUNTS_MOVED, startTime, target: 'handlers' });
  const total = ACCOUNTS * MOVES_PER_ACCOUNT;
  const order = perAccountOrder(moves.replayed, ACCOUNTS, MOVES_PER_ACCOUNT);
  const v = result.validation;
  tour.log(
    `  to the handlers of ${shortName(consumer.name)}: messagesReplayed ${fmt.int(result.messagesReplayed)}, failed ${result.failed}, ` +
      `stoppedBy ${result.stoppedBy}, ${fmt.ms(result.durationMs)}` +
      (v ? `; validation: complete=${v.complete} entriesInRange=${v.entriesInRange} invalid=${v.invalid.length}` : ''),
  );
  const groupUntouched = moves.live.length === liveBefore && (await isDrained(partitioning, ACCOUNTS_MOVED));
  tour.log(`  the handler saw ${fmt.int(moves.replayed.length)} replayed moves (ctx.isReplay()), ${order.outOfOrder.length} accounts out of order; live deliveries meanwhile: ${moves.live.length - liveBefore}`);

  report.row(
    `dry run (${oneAccount})`,
    `messagesReplayed ${dry.messagesReplayed} / ${MOVES_PER_ACCOUNT}`,
    dry.dryRun && dry.messagesReplayed === MOVES_PER_ACCOUNT,
    `the filtered dry run did not count the ${MOVES_PER_ACCOUNT} moves of ${oneAccount}`,
  );
  report.row(
    `last ${REPLAY_WINDOW_MINUTES} min to handlers`,
    `messagesReplayed ${fmt.int(result.messagesReplayed)} / ${fmt.int(total)} in ${fmt.ms(result.durationMs)}, ` +
      `${order.outOfOrder.length} accounts out of order, group untouched: ${groupUntouched ? 'yes' : 'no'}`,
    result.messagesReplayed === total &&
      result.failed === 0 &&
      moves.replayed.length === total &&
      order.missing === 0 &&
      order.duplicates === 0 &&
      order.outOfOrder.length === 0 &&
      groupUntouched,
    'the replay did not hand every stored move once, in per-account order, to the handler without touching the group',
  );
  return report;
}

async function partitionCount(partitioning: PartitioningManager): Promise<number> {
  return (await partitioning.getPartitionStats(ACCOUNTS_MOVED)).length;
}
