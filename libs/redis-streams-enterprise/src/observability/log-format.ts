/** Identifiers in log lines, always in the same `key=value` form and order. */
export function logIds(ids: { stream?: string; group?: string; consumer?: string; id?: string; pattern?: string }): string {
  const parts: string[] = [];
  if (ids.stream !== undefined) parts.push(`stream=${ids.stream}`);
  if (ids.group !== undefined) parts.push(`group=${ids.group}`);
  if (ids.consumer !== undefined) parts.push(`consumer=${ids.consumer}`);
  if (ids.pattern !== undefined) parts.push(`pattern=${ids.pattern.slice(0, 120)}`);
  if (ids.id !== undefined) parts.push(`id=${ids.id}`);
  return parts.join(' ');
}

/** True for Error-like values, including errors created in another realm (Node internals seen from a VM context). */
export function isErrorLike(value: unknown): value is Error {
  return value instanceof Error || (typeof value === 'object' && value !== null && typeof (value as Error).message === 'string' && typeof (value as Error).name === 'string');
}

/** Message of an unknown thrown value, for logs. */
export function errorText(error: unknown): string {
  return isErrorLike(error) ? `${error.name}: ${error.message}` : String(error);
}
