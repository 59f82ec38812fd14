export declare class RedisCluster {
  /** Seed nodes of the cluster (all masters). */
  readonly nodes: { host: string; port: number }[];
  private constructor();
  /** Starts `masters` (default 3) cluster-enabled redis-servers and joins them with `redis-cli --cluster create`. */
  static start(options?: { masters?: number }): Promise<RedisCluster>;
  stop(): Promise<void>;
}
