/**
 * Log helpers. Anything that can come from a message (a pattern, a header name, an error message that quotes a
 * payload) goes through `escapeControl` before it reaches a log line: a newline or an ANSI escape in a pattern must
 * not forge a log line or repaint a terminal.
 */

/** C0/C1 control characters, DEL and the Unicode line/paragraph separators. */
// Control characters in a regular expression on purpose: they are what is escaped.
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g;

/** Text with every control character written as an escape (`\n`, `\x1b`, `\u2028`), so it stays on one line. */
export function escapeControl(text: string): string {
  return text.replace(CONTROL, (c) => {
    if (c === '\n') return '\\n';
    if (c === '\r') return '\\r';
    if (c === '\t') return '\\t';
    const code = c.charCodeAt(0);
    return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16)}`;
  });
}

/** Identifiers of a log line; `logIds` prints them, `logFields` hands them to JSON loggers. */
export interface LogIds {
  stream?: string;
  group?: string;
  consumer?: string;
  /** The Redis entry id. */
  id?: string;
  pattern?: string;
  /** The message id of the envelope (`id` field). */
  messageId?: string;
}

/** Identifiers in log lines, always in the same `key=value` form and order, control characters escaped. */
export function logIds(ids: LogIds): string {
  const parts: string[] = [];
  if (ids.stream !== undefined) parts.push(`stream=${escapeControl(ids.stream)}`);
  if (ids.group !== undefined) parts.push(`group=${escapeControl(ids.group)}`);
  if (ids.consumer !== undefined) parts.push(`consumer=${escapeControl(ids.consumer)}`);
  if (ids.pattern !== undefined) parts.push(`pattern=${escapeControl(ids.pattern.slice(0, 120))}`);
  if (ids.id !== undefined) parts.push(`id=${escapeControl(ids.id)}`);
  if (ids.messageId !== undefined) parts.push(`messageId=${escapeControl(ids.messageId.slice(0, 120))}`);
  return parts.join(' ');
}

/**
 * The fields of a log line as an object, for the second argument of Nest's Logger (`logger.warn(text, fields)`):
 * Nest's ConsoleLogger prints them after the text (as `params` in json mode), nestjs-pino merges them into the
 * record. Entry ids are `entryId`; every string is escaped and bounded (they may come from a message).
 */
export function logFields(ids: LogIds & { reason?: string; error?: unknown }): Record<string, string> {
  const fields: Record<string, string> = {};
  const put = (key: string, value: string | undefined, max = 200) => {
    if (value !== undefined) fields[key] = escapeControl(value.slice(0, max));
  };
  put('stream', ids.stream);
  put('group', ids.group);
  put('consumer', ids.consumer);
  put('entryId', ids.id);
  put('messageId', ids.messageId);
  put('pattern', ids.pattern, 120);
  put('reason', ids.reason);
  if (ids.error !== undefined) put('error', errorText(ids.error), 500);
  return fields;
}

/** True for Error-like values, including errors created in another realm (Node internals seen from a VM context). */
export function isErrorLike(value: unknown): value is Error {
  return value instanceof Error || (typeof value === 'object' && value !== null && typeof (value as Error).message === 'string' && typeof (value as Error).name === 'string');
}

/** An error's stack for `logger.error(text, stack)`, its message (which may quote a message) escaped. */
export function stackText(error: Error): string | undefined {
  return error.stack?.replace(error.message, escapeControl(error.message));
}

/** Message of an unknown thrown value, for logs; control characters escaped (error messages may quote a message). */
export function errorText(error: unknown): string {
  return escapeControl(isErrorLike(error) ? `${error.name}: ${error.message}` : String(error));
}
