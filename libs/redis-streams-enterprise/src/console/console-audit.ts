import type { AuditContext } from '../observability/audit-trail.js';
import type { ConsoleRequest, ResolvedConsoleOptions } from './console.options.js';

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/**
 * Who performs a console write, for the audit trail: the `actor` option asked about the request (a failing one is
 * recorded as such rather than failing the write), and the request's `x-request-id` as the correlation id when it is
 * one. Undefined leaves both to the library (`compliance.actor`, a random id).
 */
export function auditContextOf(options: ResolvedConsoleOptions, request: ConsoleRequest): AuditContext | undefined {
  let actor: string | undefined;
  try {
    actor = options.actor?.(request);
  } catch (error) {
    actor = `unknown (console actor failed: ${error instanceof Error ? error.message : String(error)})`;
  }
  const id = request.headers['x-request-id'];
  const correlationId = typeof id === 'string' && REQUEST_ID.test(id) ? id : undefined;
  if (actor === undefined && correlationId === undefined) return undefined;
  return { ...(typeof actor === 'string' && actor.length > 0 ? { actor } : {}), ...(correlationId ? { correlationId } : {}) };
}
