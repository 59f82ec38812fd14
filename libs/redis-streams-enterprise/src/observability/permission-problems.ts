/**
 * Commands Redis refuses for lack of ACL rights. Without this, a user missing one command (HDEL, ZRANGE, TIME inside
 * a script) sees messages flow while retries, reclaims and dead letters silently never happen: the loops log a
 * generic failure and retry forever. Here each refused command is reported once, by name, with what to grant, and the
 * server's status turns unhealthy until the command succeeds again.
 *
 * Errors are seen on the connections themselves (`watch`), so every command of every loop is covered without each
 * catch block knowing about ACLs; `report(error)` takes errors seen elsewhere.
 */
import type { Cluster, Redis } from 'ioredis';
import { aclCommandName, ACL_ROLE_COMMANDS, CLUSTER_COMMANDS, CONNECTION_COMMANDS, libraryScriptOf, type LibraryScript } from '../connection/acl-roles.js';
import { parseNoPerm, redact } from '../connection/redis-error-codes.js';
import { isErrorLike } from './log-format.js';

/** A refused command, as `classifyNoPerm` reads it from an error. */
export interface PermissionDenial {
  /** What was refused: a command in ACL form (`HDEL`, `CLIENT|SETNAME`), or `EVALSHA` when Redis does not say which command of a script. */
  readonly command: string;
  /** Refused: the command itself, or a key or channel it names (the user's `~` / `&` patterns do not cover it). */
  readonly kind: 'command' | 'key' | 'channel';
  /** The library script in which it was refused. */
  readonly script?: string;
  /** The commands that script runs (one of them is refused) when Redis does not name it (Redis 7.0). */
  readonly scriptCommands?: readonly string[];
  /** Redis's reply, credentials removed. */
  readonly message: string;
}

/** One entry of `getStatus().permissionProblems`. */
export interface PermissionProblem {
  readonly command: string;
  readonly kind: 'command' | 'key' | 'channel';
  readonly script?: string;
  readonly message: string;
  /** When it was refused first (ISO 8601). */
  readonly since: string;
  /** How often it was refused since. */
  readonly count: number;
}

/** The command an ioredis error was the reply to (ioredis attaches `{ name, args }` to reply errors). */
function failedCommandOf(error: unknown): { name: string; args: unknown[] } | undefined {
  const command = (error as { command?: { name?: unknown; args?: unknown } } | undefined)?.command;
  if (typeof command?.name !== 'string') return undefined;
  return { name: command.name, args: Array.isArray(command.args) ? command.args : [] };
}

function scriptOf(name: string, args: readonly unknown[]): LibraryScript | undefined {
  if (!/^eval(sha)?(_ro)?$/i.test(name) || args[0] === undefined) return undefined;
  return libraryScriptOf(String(args[0]));
}

/**
 * The refused command of a Redis ACL error (NOPERM, or a refusal inside a script); undefined for any other error.
 * With an ioredis error the failed command is known too: a refused key names its command, a refused script names the
 * library script and the commands it runs.
 */
export function classifyNoPerm(error: unknown): PermissionDenial | undefined {
  if (!isErrorLike(error)) return undefined;
  const reply = parseNoPerm(error.message);
  if (!reply) return undefined;
  const failed = failedCommandOf(error);
  const script = failed ? scriptOf(failed.name, failed.args) : undefined;
  const sent = failed ? aclCommandName(failed.name, failed.args[0]) : undefined;
  const command = (reply.command ?? (reply.inScript ? (sent ?? 'evalsha') : (sent ?? 'unknown'))).toUpperCase();
  return {
    command,
    kind: reply.kind,
    ...(script ? { script: script.name } : {}),
    ...(script && !reply.command && reply.kind === 'command' ? { scriptCommands: script.commands.map((c) => c.toUpperCase()) } : {}),
    message: redact(error.message),
  };
}

/** Where problems are logged: a Nest Logger fits. */
export interface PermissionLogger {
  error(message: string): void;
  log(message: string): void;
}

interface Tracked {
  readonly denial: PermissionDenial;
  readonly since: Date;
  count: number;
}

type SendCommand = (command: { name: string; args: unknown[]; promise: Promise<unknown> }, ...rest: unknown[]) => unknown;

/** Commands already observed (a Cluster sends a redirected command again through the same method). */
const observed = new WeakSet<object>();
/** Connections already watched. */
const watched = new WeakSet<object>();

/**
 * The refused commands of one server (or client): each logged once, with what to grant, and listed in its status
 * until the same command succeeds again.
 */
export class PermissionProblems {
  private readonly problems = new Map<string, Tracked>();
  /** Problems logged once already: a problem that comes back after it cleared is not logged again. */
  private readonly logged = new Set<string>();

  /**
   * @param logger where the one line per refused command goes
   * @param user the ACL user the connections log in as (for the message)
   */
  constructor(
    private readonly logger: PermissionLogger,
    private readonly user: string,
  ) {}

  /** True while some command is refused. */
  get any(): boolean {
    return this.problems.size > 0;
  }

  /** The refused commands, oldest first. */
  list(): PermissionProblem[] {
    return [...this.problems.values()].map(({ denial, since, count }) => ({
      command: denial.command,
      kind: denial.kind,
      ...(denial.script ? { script: denial.script } : {}),
      message: denial.message,
      since: since.toISOString(),
      count,
    }));
  }

  /**
   * Records an error if it is an ACL refusal (logged the first time for its command); returns whether it was one.
   * Other errors are ignored: their owners report them.
   */
  report(error: unknown): boolean {
    const denial = classifyNoPerm(error);
    if (!denial) return false;
    const key = problemKey(denial);
    const known = this.problems.get(key);
    if (known) {
      known.count += 1;
      return true;
    }
    this.problems.set(key, { denial, since: new Date(), count: 1 });
    if (!this.logged.has(key)) {
      this.logged.add(key);
      this.logger.error(describeDenial(denial, this.user));
    }
    return true;
  }

  /**
   * Observes every command sent on a connection (a `Redis` or a `Cluster`): refusals are reported, and a command (or
   * library script) that succeeds again clears its problem. Idempotent per connection.
   */
  watch(redis: Redis | Cluster): void {
    if (watched.has(redis)) return;
    watched.add(redis);
    const target = redis as unknown as { sendCommand: SendCommand };
    const send = target.sendCommand.bind(redis) as SendCommand;
    target.sendCommand = (command, ...rest) => {
      const result = send(command, ...rest);
      if (!observed.has(command)) {
        observed.add(command);
        command.promise.then(
          () => {
            if (this.problems.size > 0) this.succeeded(command.name, command.args);
          },
          (error: unknown) => {
            this.report(error);
          },
        );
      }
      return result;
    };
  }

  /**
   * A command or script that went through: the problems it stood for are solved. A script that succeeded may not
   * have reached the refused command (it returns early on some paths), so its problem leaves the status quietly and
   * comes back, unlogged, if it is refused again.
   */
  private succeeded(name: string, args: readonly unknown[]): void {
    const script = scriptOf(name, args);
    const command = aclCommandName(name, args[0]).toUpperCase();
    for (const [key, { denial }] of this.problems) {
      const solved = script ? denial.script === script.name : !denial.script && denial.command === command;
      if (!solved) continue;
      this.problems.delete(key);
      if (!script) this.logger.log(`Redis now allows ${denial.command} for user ${this.user}; permission problem cleared`);
    }
  }
}

function problemKey(denial: PermissionDenial): string {
  return `${denial.kind} ${denial.command} ${denial.script ?? ''}`;
}

/** What each command is for, from the role lists (the first role that names it). */
const PURPOSE = new Map<string, string>();
for (const entry of [...CONNECTION_COMMANDS, ...CLUSTER_COMMANDS, ...Object.values(ACL_ROLE_COMMANDS).flat()]) {
  if (!PURPOSE.has(entry.command.toUpperCase())) PURPOSE.set(entry.command.toUpperCase(), entry.why);
}

const SEE = 'see the docs › Security › Least privilege (ACL), or aclSetUserCommand()';

/** The one log line of a refused command: what was refused, Redis's words, what to grant and what fails meanwhile. */
export function describeDenial(denial: PermissionDenial, user: string): string {
  const inScript = denial.script ? ` in script ${denial.script}` : '';
  if (denial.kind !== 'command') {
    const what = denial.kind === 'key' ? 'a key' : 'a channel';
    return (
      `Redis refused ${denial.command}${inScript} for user ${user}: ${denial.message} — the user may not access ${what} it names; ` +
      `its key patterns must cover every key of streams.keyPrefix (~<prefix>:*) (${SEE})`
    );
  }
  if (denial.scriptCommands) {
    return (
      `Redis refused a command${inScript} for user ${user}: ${denial.message} — the script runs ${denial.scriptCommands.join(', ')}: ` +
      `grant all of them (${SEE}); until then what the script does (retries, reclaims, dead letters, commits) cannot happen ` +
      `and entries stay pending`
    );
  }
  const purpose = PURPOSE.get(denial.command);
  return (
    `Redis refused ${denial.command}${inScript} for user ${user}: ${denial.message} — grant it (${SEE})` +
    `${purpose ? `; it is needed for: ${purpose}` : ''}; until then that work cannot happen (retries, reclaims and ` +
    `dead-lettering included) and entries may stay pending`
  );
}

/** The ACL user of a connection configuration: the URL's user name, `options.username`, else `default`. */
export function aclUserOf(connection: {
  readonly url?: string;
  readonly options?: { readonly username?: string };
  readonly cluster?: { readonly options?: { readonly redisOptions?: { readonly username?: string } } };
}): string {
  const clusterUser = connection.cluster?.options?.redisOptions?.username;
  if (connection.cluster) return clusterUser ?? 'default';
  if (connection.options?.username) return connection.options.username;
  try {
    const user = connection.url ? decodeURIComponent(new URL(connection.url).username) : '';
    return user || 'default';
  } catch {
    return 'default';
  }
}
