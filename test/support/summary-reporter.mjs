import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

/** How long after the run a process still kept alive by a leaked handle is reported and ended. */
const LEAK_GRACE_MS = 20_000;

/**
 * Writes the run's totals to JEST_SUMMARY_FILE (when set), so .ci/run can print the plain
 * "N passed, N failed" line CI reads without parsing jest's human output.
 *
 * On a 2-core machine jest runs every suite in its own process (one worker: in band), so a socket, server, child or
 * timer a test leaves open keeps jest from exiting, and CI would wait until its own time limit. An unref'd timer
 * (it never keeps the process alive itself) names what is still open, counts it as a failure and ends the run.
 */
export default class SummaryReporter {
  onRunComplete(_contexts, results) {
    setTimeout(() => reportLeak(results), LEAK_GRACE_MS).unref();
    const file = process.env.JEST_SUMMARY_FILE;
    if (!file) return;
    mkdirSync(dirname(file), { recursive: true });
    const failedSuites = results.numFailedTestSuites + (results.numRuntimeErrorTestSuites ?? 0);
    writeFileSync(
      file,
      JSON.stringify({
        passed: results.numPassedTests,
        failed: results.numFailedTests + (failedSuites > 0 && results.numFailedTests === 0 ? failedSuites : 0),
        skipped: results.numPendingTests + results.numTodoTests,
        suites: results.numTotalTestSuites,
        failedSuites,
      }),
    );
  }
}

/** The process outlived its run: print what holds it, record one failure, exit. */
function reportLeak(results) {
  const resources = process.getActiveResourcesInfo().filter((kind) => kind !== 'TTYWrap');
  const handles = process._getActiveHandles?.() ?? [];
  const described = handles.map((handle) => {
    const name = handle?.constructor?.name ?? typeof handle;
    if (name === 'Socket') return `Socket ${handle.remoteAddress ?? ''}:${handle.remotePort ?? ''} -> local ${handle.localPort ?? ''}`;
    if (name === 'Server') return `Server ${JSON.stringify(handle.address?.())}`;
    if (name === 'ChildProcess') return `ChildProcess pid ${handle.pid} ${handle.spawnfile ?? ''} ${(handle.spawnargs ?? []).join(' ').slice(0, 200)}`;
    return name;
  });
  process.stderr.write(
    `\nThe test run ended ${LEAK_GRACE_MS / 1000} s ago, but something a test left open keeps the process alive: ` +
      `${resources.join(', ')}\n${described.map((line) => `  ${line}`).join('\n')}\n`,
  );
  const file = process.env.JEST_SUMMARY_FILE;
  if (file) {
    const failedSuites = results.numFailedTestSuites + (results.numRuntimeErrorTestSuites ?? 0);
    writeFileSync(file, JSON.stringify({ passed: results.numPassedTests, failed: results.numFailedTests + 1, failedSuites, leaked: resources }));
  }
  process.exit(1);
}
