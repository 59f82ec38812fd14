/**
 * Liveness and readiness of a server, as sentences (`getStatus().liveness` / `.readiness`): the health indicator
 * and any probe read the same reasons.
 *
 * - Not live: something a restart would fix or an operator must fix: a background loop that keeps failing (NOPERM,
 *   NOSCRIPT, OOM) or is stuck, a command Redis refuses for lack of ACL rights, no reading loop while listening, Redis
 *   not answering.
 * - Not ready: not live, or not listening (starting, reconnecting, closed), a connection not ready, or draining on
 *   shutdown.
 */
import type { ServerConnections } from '../consumer/server-connections.js';
import { loopReasons, type LoopHealthReport } from '../observability/loop-health.js';
import { RedisStreamsStatus } from '../redis-streams.constants.js';

/** Liveness or readiness in `getStatus()`. */
export interface ProbeVerdict {
  readonly ok: boolean;
  /** Why not, one sentence each; empty when ok. */
  readonly reasons: readonly string[];
}

export interface HealthInput {
  readonly state: RedisStreamsStatus;
  readonly connections: ServerConnections;
  /** A reading loop (group consumer or partitioned consumer) runs. */
  readonly reading: boolean;
  /** close() has begun: in-flight work finishes, nothing new is read. */
  readonly draining: boolean;
  readonly loops: readonly LoopHealthReport[];
  /** Sentences about refused commands (permission-problems.ts). */
  readonly permissionReasons: readonly string[];
  /** The status query failed (Redis did not answer): its error. */
  readonly redisError?: string;
}

export function liveness(input: HealthInput): ProbeVerdict {
  const reasons = [...input.permissionReasons, ...input.loops.flatMap(loopReasons)];
  if (input.state === RedisStreamsStatus.Connected && !input.reading && !input.draining) reasons.push('no reading loop runs although the server is listening');
  for (const loop of input.loops) {
    if (!loop.running && input.state === RedisStreamsStatus.Connected && !input.draining) reasons.push(`${loop.name} has stopped`);
  }
  if (input.redisError !== undefined) reasons.push(`Redis did not answer the status query: ${input.redisError}`);
  return { ok: reasons.length === 0, reasons };
}

export function readiness(input: HealthInput, live: ProbeVerdict): ProbeVerdict {
  const reasons: string[] = [];
  if (input.draining) reasons.push('draining: the server is shutting down (reads stopped, in-flight handlers finish)');
  else if (input.state !== RedisStreamsStatus.Connected) reasons.push(`not listening (status ${input.state})`);
  const { command, blocking } = input.connections;
  if (!input.draining && input.state === RedisStreamsStatus.Connected) {
    if (command?.status !== 'ready') reasons.push(`the command connection is ${command?.status ?? 'not open'}`);
    const notReady = input.connections.reading().find((c) => c.status !== 'ready');
    if (blocking === undefined || notReady) reasons.push(`the reading connection is ${notReady?.status ?? 'not open'}`);
  }
  reasons.push(...live.reasons);
  return { ok: reasons.length === 0, reasons };
}
