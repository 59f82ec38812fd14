import { plainToInstance } from 'class-transformer';
import { InvalidOptionsError } from '../errors/invalid-options.error.js';
import type { DtoClass } from './schema-source.js';

/**
 * What a handler reads, given in its pattern extras:
 * ```ts
 * @StreamEvent('user.created', { schema: { version: '2.0.0', type: UserCreatedV2 } })
 * created(@Payload() user: UserCreatedV2) { ... }   // a UserCreatedV2 instance, also for messages written with 1.x
 * ```
 * Messages written with another registered version reach the handler mapped to this one (upcast, or downcast for
 * newer writers) when the two versions are compatible; see the README ("Handlers that ask for a version").
 */
export interface StreamHandlerSchemaOptions {
  /**
   * The registered version the handler reads. Defaults for properties the message lacks come from this version's
   * JSON Schema `default`s. Without it, the reader schema is the JSON Schema of `type`.
   */
  readonly version?: string;
  /**
   * A class-validator DTO class: the payload becomes an instance of it (class-transformer `plainToInstance`, so its
   * property initialisers supply defaults for fields the message lacks), which `@Payload()` and Nest's
   * `ValidationPipe` receive.
   */
  readonly type?: DtoClass;
}

/** Handler options after their shape was checked. */
export interface HandlerSchema extends StreamHandlerSchemaOptions {
  /** How errors name what the handler reads: `version 2.0.0 (UserCreatedV2)`. */
  readonly label: string;
}

// A memo of a pure function of the (immutable) extras object: it changes no behaviour, so sharing it is harmless.
const parsed = new WeakMap<object, HandlerSchema | InvalidOptionsError>();

/**
 * The `schema` entry of a handler's pattern extras, checked once per handler (cached by object identity). Undefined
 * when the handler has none; an `InvalidOptionsError` when it is malformed (the message is then dead-lettered with it,
 * since a handler cannot be half-configured).
 */
export function handlerSchemaOf(extras: unknown): HandlerSchema | InvalidOptionsError | undefined {
  if (typeof extras !== 'object' || extras === null) return undefined;
  const raw = (extras as { schema?: unknown }).schema;
  if (raw === undefined) return undefined;
  if (typeof raw === 'object' && raw !== null) {
    const cached = parsed.get(raw);
    if (cached) return cached;
  }
  const result = parse(raw);
  if (typeof raw === 'object' && raw !== null) parsed.set(raw, result);
  return result;
}

function parse(raw: unknown): HandlerSchema | InvalidOptionsError {
  const violations: { path: string; rule: string; message: string }[] = [];
  const add = (path: string, rule: string, message: string) => violations.push({ path, rule, message: `handler option ${path} ${message}` });
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    add('schema', 'isObject', 'must be an object { version?, type? }');
    return new InvalidOptionsError(violations);
  }
  const { version, type, ...rest } = raw as Record<string, unknown>;
  if (version !== undefined && (typeof version !== 'string' || version.length === 0)) add('schema.version', 'isString', 'must be a non-empty string');
  if (type !== undefined && typeof type !== 'function') add('schema.type', 'isClass', 'must be a DTO class');
  if (version === undefined && type === undefined) add('schema', 'versionOrType', 'needs a version, a type, or both');
  for (const key of Object.keys(rest)) add(`schema.${key}`, 'whitelistValidation', 'is not a known option (check for a typo)');
  if (violations.length > 0) return new InvalidOptionsError(violations);
  const dto = type as DtoClass | undefined;
  const name = dto ? dto.name || 'the handler DTO' : '';
  const label = version === undefined ? name : dto ? `version ${version as string} (${name})` : `version ${version as string}`;
  return { version: version as string | undefined, type: dto, label };
}

/**
 * The payload as the handler's DTO instance (`plainToInstance`; property initialisers fill what the message lacks),
 * or unchanged when the handler names no DTO or the payload is not an object.
 */
export function toHandlerInstance(data: unknown, reader: HandlerSchema | undefined): unknown {
  if (!reader?.type || typeof data !== 'object' || data === null || Array.isArray(data)) return data;
  return plainToInstance(reader.type as new () => object, data as object, { exposeDefaultValues: true });
}
