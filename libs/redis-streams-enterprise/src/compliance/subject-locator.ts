import picomatch from 'picomatch';
import type { SubjectLocation } from '../config/compliance.options.js';

/**
 * Where the subject of a pattern's messages is (compliance.subjects): an exact pattern wins over a glob, among globs
 * the first listed wins.
 */
export class SubjectLocator {
  private readonly exact = new Map<string, SubjectLocation>();
  private readonly globs: { readonly matches: (pattern: string) => boolean; readonly location: SubjectLocation }[] = [];

  constructor(subjects: Readonly<Record<string, SubjectLocation>>) {
    for (const [pattern, location] of Object.entries(subjects)) {
      if (picomatch.scan(pattern).isGlob) this.globs.push({ matches: picomatch(pattern), location });
      else this.exact.set(pattern, location);
    }
  }

  /** True when no topic is configured. */
  get isEmpty(): boolean {
    return this.exact.size === 0 && this.globs.length === 0;
  }

  /** The location for a message pattern, or undefined when its topic is not configured. */
  locate(pattern: string): SubjectLocation | undefined {
    return this.exact.get(pattern) ?? this.globs.find((g) => g.matches(pattern))?.location;
  }
}

/** Compares an identifier value with the subject: strings as they are, numbers and booleans by their text. */
function sameSubject(value: unknown, subject: string): boolean {
  if (typeof value === 'string') return value === subject;
  if (typeof value === 'number' || typeof value === 'bigint' || typeof value === 'boolean') return String(value) === subject;
  return false;
}

/** The value at a dotted path of a decoded payload (own properties only; the payload came from a stream). */
export function valueAt(data: unknown, path: string): unknown {
  let current: unknown = data;
  for (const name of path.split('.')) {
    if (typeof current !== 'object' || current === null || !Object.prototype.hasOwnProperty.call(current, name)) return undefined;
    current = (current as Record<string, unknown>)[name];
  }
  return current;
}

/** True when a message (its payload, or its headers) is about the subject. */
export function isAboutSubject(location: SubjectLocation, message: { readonly data?: unknown; readonly headers: Readonly<Record<string, string>> }, subject: string): boolean {
  if (location.header !== undefined) return sameSubject(Object.prototype.hasOwnProperty.call(message.headers, location.header) ? message.headers[location.header] : undefined, subject);
  return sameSubject(valueAt(message.data, location.field), subject);
}

/** A glob list as one predicate (undefined: every pattern). */
export function topicFilter(topics: readonly string[] | undefined): ((pattern: string) => boolean) | undefined {
  if (!topics || topics.length === 0) return undefined;
  const matchers = topics.map((t) => picomatch(t));
  return (pattern) => matchers.some((m) => m(pattern));
}
