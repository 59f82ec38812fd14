import type { TestCertificates } from './tls-certs.mjs';

export declare class TlsRedisServer {
  readonly dir: string;
  readonly tlsPort: number;
  /** The plain-text port, when started with `plainPort: true`. */
  readonly plainPort: number | undefined;
  private constructor();
  /**
   * Starts redis-server with `--tls-port` and the certificate `leaf` (default `server`), trusting `certs.ca`;
   * `authClients` requires client certificates; `plainPort` opens a plain-text port too (otherwise `--port 0`).
   */
  static start(options: { certs: TestCertificates; leaf?: 'server' | 'otherName'; authClients?: boolean; plainPort?: boolean }): Promise<TlsRedisServer>;
  stop(): Promise<void>;
}

export declare class TlsRedisCluster {
  readonly nodes: { host: string; port: number }[];
  private constructor();
  /** Starts `masters` (default 3) TLS-only cluster nodes (`--tls-cluster yes`) with the certificate `leaf` and joins them. */
  static start(options: { certs: TestCertificates; masters?: number; leaf?: 'server' | 'otherName' }): Promise<TlsRedisCluster>;
  stop(): Promise<void>;
}
