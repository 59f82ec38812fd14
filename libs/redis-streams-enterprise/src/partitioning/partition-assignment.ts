import { hashKey64 } from './jump-hash.js';

/**
 * What one consumer knows when it plans its share of a group's partitions. Every consumer runs
 * `planAssignment` on (nearly) the same view and acts only for itself; Redis leases, not this plan,
 * enforce that a partition has one owner, so a plan based on a stale view only loses a race.
 */
export interface AssignmentView {
  /** This consumer's id. */
  readonly self: string;
  /** Live member ids (should include self; it is added when missing), any order, duplicates allowed. */
  readonly members: readonly string[];
  /** Partition -> current lease holder (absent = free). Entries for partitions not in `partitions` are ignored. */
  readonly owners: ReadonlyMap<number, string>;
  /** The partitions of the topic to assign (e.g. [0..n-1]). */
  readonly partitions: readonly number[];
  /** `partitioning.loadBalancing`: spread evenly (true) or take whatever is free (false). */
  readonly balanced: boolean;
}

/**
 * What self should do. `keep` and `release` are ascending; `acquire` is in preference order (best
 * first). Acquiring means trying to take the lease, which fails if another member got there first.
 */
export interface AssignmentPlan {
  readonly keep: number[];
  readonly release: number[];
  readonly acquire: number[];
}

/**
 * Members in one canonical order: deduplicated, sorted by UTF-16 code units. `localeCompare` is not
 * used because its order depends on the process's locale and ICU data, and every member must
 * compute the same quotas.
 */
function canonicalMembers(members: readonly string[], self?: string): string[] {
  const unique = new Set(members);
  if (self !== undefined) unique.add(self);
  return [...unique].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

/**
 * How many partitions `member` should own when `partitionCount` partitions are spread over
 * `members`: floor(P/M), plus one for the first P%M members in sorted order. `member` counts as a
 * member even when missing from the list. Quotas of all members sum to `partitionCount`.
 * @throws RangeError when `partitionCount` is not an integer >= 0.
 */
export function quotaOf(member: string, members: readonly string[], partitionCount: number): number {
  if (!Number.isSafeInteger(partitionCount) || partitionCount < 0) {
    throw new RangeError(`partitionCount must be an integer >= 0, got ${partitionCount}`);
  }
  const sorted = canonicalMembers(members, member);
  const base = Math.floor(partitionCount / sorted.length);
  return sorted.indexOf(member) < partitionCount % sorted.length ? base + 1 : base;
}

/**
 * Plans self's share of the partitions; pure, so every member can run it on the same view.
 *
 * Balanced: self keeps the partitions it owns up to its quota (the lowest-numbered, releasing the
 * rest) and plans to acquire free ones up to its quota. A join or leave therefore moves only the
 * partitions needed to restore the quotas (sticky). Free candidates are ranked by rendezvous
 * (highest-random-weight) score of (partition, self), so members that plan at the same moment
 * mostly want different partitions instead of all racing for the lowest-numbered ones.
 *
 * Not balanced: keep everything owned, acquire everything free.
 *
 * A partition whose owner is not a live member counts as free (its lease is about to expire or the
 * member left). A partition owned by another live member is never planned for acquisition.
 */
export function planAssignment(view: AssignmentView): AssignmentPlan {
  const members = canonicalMembers(view.members, view.self);
  const live = new Set(members);
  const partitions = [...new Set(view.partitions)].sort((a, b) => a - b);

  const owned: number[] = [];
  const free: number[] = [];
  for (const partition of partitions) {
    const owner = view.owners.get(partition);
    if (owner === view.self) owned.push(partition);
    else if (owner === undefined || !live.has(owner)) free.push(partition);
  }

  if (!view.balanced) return { keep: owned, release: [], acquire: free };

  const quota = quotaOf(view.self, members, partitions.length);
  const keep = owned.slice(0, quota);
  const release = owned.slice(quota);
  const wanted = quota - keep.length;
  const acquire = wanted > 0 ? byRendezvousScore(free, view.self).slice(0, wanted) : [];
  return { keep, release, acquire };
}

/** Free partitions, best first for `self`: highest hashKey64(`${partition}:${self}`), ties by number. */
function byRendezvousScore(partitions: readonly number[], self: string): number[] {
  return partitions
    .map((partition) => ({ partition, score: hashKey64(`${partition}:${self}`) }))
    .sort((a, b) => (a.score > b.score ? -1 : a.score < b.score ? 1 : a.partition - b.partition))
    .map((candidate) => candidate.partition);
}
