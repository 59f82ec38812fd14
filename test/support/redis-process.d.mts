export declare function freePort(): Promise<number>;
export declare function assertRedisServerInstalled(): void;
export declare class RedisProcess {
  readonly port: number;
  readonly dir: string;
  runId: string;
  readonly url: string;
  readonly pid: number | undefined;
  private constructor();
  /** Starts redis-server; `appendonly: true` keeps data across `kill()` + `restart()`. */
  static start(options?: { port?: number; appendonly?: boolean; args?: string[] }): Promise<RedisProcess>;
  kill(): Promise<void>;
  restart(): Promise<void>;
  stop(): Promise<void>;
}
