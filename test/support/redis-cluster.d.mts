/** Redis Cluster hash slot of a key (cluster-key-slot, the function ioredis routes with). */
export declare function keySlot(key: string): number;

export interface ClusterNodeAddress {
  host: string;
  port: number;
}

/** One node as CLUSTER NODES describes it (seen from one live node). */
export interface ClusterNodeInfo extends ClusterNodeAddress {
  readonly id: string;
  readonly flags: string[];
  readonly role: 'master' | 'replica';
  /** Id of the master this replica follows; null for a master. */
  readonly masterId: string | null;
  readonly configEpoch: number;
  /** Flagged `fail` or `fail?` by the node that was asked. */
  readonly failed: boolean;
  readonly connected: boolean;
  /** True for the node that was asked. */
  readonly myself: boolean;
  /** Owned slots as inclusive [from, to] ranges (slots being migrated are left out). */
  readonly slots: [number, number][];
}

export interface RedisClusterOptions {
  /** Masters (the slots are split evenly between them). @default 3 */
  masters?: number;
  /** Replicas of each master; above 0 enables failover. @default 0 */
  replicasPerMaster?: number;
  /** `cluster-node-timeout`: how long a node may be unreachable before it is failed over. @default 2000 */
  nodeTimeoutMs?: number;
  /** AOF with `appendfsync always` on every node. @default false */
  appendonly?: boolean;
  /** More redis-server arguments for every node. */
  args?: string[];
}

export declare class RedisCluster {
  /**
   * Every node started, in start order: the first `masters` were created as masters, the rest as their replicas
   * (roles change on failover: ask `topology()`). Pass them all as seeds, so a client still finds the cluster when
   * one of them is down.
   */
  readonly nodes: ClusterNodeAddress[];
  /** The nodes whose process runs. */
  readonly liveNodes: ClusterNodeAddress[];
  private constructor();
  /**
   * Starts `masters * (1 + replicasPerMaster)` cluster-enabled redis-servers on free loopback ports, joins them with
   * `redis-cli --cluster create`, and waits for cluster_state:ok (and, with replicas, for every replica in sync).
   */
  static start(options?: RedisClusterOptions): Promise<RedisCluster>;
  isAlive(node: ClusterNodeAddress): boolean;
  /** Data directory of a node (with its redis.log). */
  dirOf(node: ClusterNodeAddress): string | undefined;
  /** CLUSTER NODES as `from` (default: the first live node) sees it. */
  topology(from?: ClusterNodeAddress): Promise<ClusterNodeInfo[]>;
  /** The live master that serves a key (or slot number). */
  masterOf(keyOrSlot: string | number): Promise<ClusterNodeInfo>;
  replicasOf(master: ClusterNodeInfo | string): Promise<ClusterNodeInfo[]>;
  /** SIGKILL a node (remembering its id and slots for waitForFailover). */
  kill(node: ClusterNodeAddress): Promise<void>;
  /**
   * Resolves once a replica of the killed master took over all its slots and every live node agrees and reports
   * cluster_state:ok; `tookMs` counts from the call.
   */
  waitForFailover(node: ClusterNodeAddress, options?: { timeoutMs?: number }): Promise<{ master: ClusterNodeInfo; tookMs: number }>;
  /** Starts a killed node again (same port and directory); a failed-over master rejoins as a replica. */
  restart(node: ClusterNodeAddress): Promise<void>;
  /** Resolves once every master has `replicasPerMaster` replicas in sync and all live nodes agree on the roles. */
  waitForReplicas(options?: { timeoutMs?: number }): Promise<void>;
  /** Kills every node (SIGKILL) and removes their data. Idempotent. */
  stop(): Promise<void>;
}
