import { createServer, connect, type Server, type Socket } from 'node:net';

/**
 * What the proxy does to traffic, switchable at run time with `setMode`:
 * - `pass`: forwards bytes both ways.
 * - `drop`: destroys every open connection at once (both sides see the connection reset); connections made
 *   afterwards are forwarded as in `pass`.
 * - `stall`: a black-holed link. Sockets stay open but no byte moves in either direction, on open and on new
 *   connections. Nothing is lost: the proxy stops reading (at most one chunk per direction is held here, the rest
 *   waits in the kernel's socket buffers, and TCP flow control stops the sender), so when the mode changes the
 *   bytes flow again, as after a partition that healed before TCP gave up. Call `halfOpen()` for one that did not.
 * - `slow`: forwards each chunk after a random delay in `[slowMs[0], slowMs[1]]`, in order.
 */
export type ProxyMode = 'pass' | 'drop' | 'stall' | 'slow';

/** One direction of one connection: reads `src`, writes `dst` as the mode allows. */
class Pipe {
  private held?: Buffer;
  private timer?: NodeJS.Timeout;
  private waitingDrain = false;

  constructor(
    private readonly src: Socket,
    private readonly dst: Socket,
    private readonly proxy: TcpProxy,
    private readonly conn: Connection,
  ) {
    src.on('data', (chunk: Buffer) => this.take(chunk));
  }

  private take(chunk: Buffer): void {
    const mode = this.proxy.mode;
    if (mode === 'stall' || this.conn.halfOpen) {
      this.src.pause();
      this.held = chunk;
    } else if (mode === 'slow') {
      this.src.pause();
      const [min, max] = this.proxy.slowMs;
      this.timer = setTimeout(() => {
        this.timer = undefined;
        this.write(chunk);
        this.kick();
      }, min + Math.random() * (max - min));
    } else {
      this.write(chunk);
    }
  }

  private write(chunk: Buffer): void {
    if (this.dst.destroyed || this.dst.write(chunk)) return;
    this.waitingDrain = true;
    this.src.pause();
    this.dst.once('drain', () => {
      this.waitingDrain = false;
      this.kick();
    });
  }

  /** Moves on after a mode change, a delay or a drain: forwards the held chunk and reads again if allowed. */
  kick(): void {
    if (this.timer || this.waitingDrain || this.proxy.mode === 'stall' || this.conn.halfOpen) return;
    const chunk = this.held;
    this.held = undefined;
    if (chunk) this.take(chunk);
    if (!this.timer && !this.waitingDrain && !this.src.destroyed) this.src.resume();
  }

  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }
}

class Connection {
  halfOpen = false;
  readonly pipes: Pipe[];

  constructor(
    readonly client: Socket,
    readonly upstream: Socket,
    proxy: TcpProxy,
  ) {
    this.pipes = [new Pipe(client, upstream, proxy, this), new Pipe(upstream, client, proxy, this)];
  }

  /** `reset`: send a TCP RST (ECONNRESET on the other side) instead of a FIN. */
  destroy(reset = false): void {
    for (const pipe of this.pipes) pipe.stop();
    for (const socket of [this.client, this.upstream]) {
      if (reset && !socket.destroyed && !socket.connecting) socket.resetAndDestroy();
      else socket.destroy();
    }
  }
}

/**
 * A TCP proxy for fault tests: listens on a free 127.0.0.1 port and forwards every connection to
 * `targetHost:targetPort`, with faults switched by `setMode`. `close()` leaves no socket or timer behind.
 *
 * ```ts
 * const proxy = await TcpProxy.start('127.0.0.1', redisPort);
 * const url = proxy.url;            // redis://127.0.0.1:<proxy port>
 * proxy.setMode('stall'); ... proxy.setMode('pass');
 * await proxy.close();
 * ```
 */
export class TcpProxy {
  mode: ProxyMode = 'pass';
  /** Delay range of `slow`, per chunk. */
  slowMs: [number, number] = [50, 200];
  /** Connections accepted since start (a reconnecting client shows up here). */
  accepted = 0;
  private readonly connections = new Set<Connection>();
  /** Where new connections go; `retarget` changes it (a failover behind a fixed address). */
  private target?: { host: string; port: number };

  private constructor(
    private readonly server: Server,
    readonly port: number,
  ) {}

  static async start(targetHost: string, targetPort: number): Promise<TcpProxy> {
    const server = createServer({ pauseOnConnect: true });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    const address = server.address();
    const proxy = new TcpProxy(server, typeof address === 'object' && address ? address.port : 0);
    proxy.target = { host: targetHost, port: targetPort };
    server.on('connection', (client) => proxy.accept(client, proxy.target?.host ?? targetHost, proxy.target?.port ?? targetPort));
    return proxy;
  }

  /** `redis://` URL of the proxy. */
  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** Open connections (both sides still open, half-open ones included). */
  get openConnections(): number {
    return this.connections.size;
  }

  setMode(mode: ProxyMode): void {
    this.mode = mode;
    if (mode === 'drop') for (const conn of [...this.connections]) conn.destroy(true);
    for (const conn of this.connections) for (const pipe of conn.pipes) pipe.kick();
  }

  /**
   * Turns every connection open now into a half-open one: the far end has forgotten it (its upstream socket is
   * destroyed) while the client's socket stays open and silent for good. Only the client closing it ends it; new
   * connections follow the mode. This is what a partition longer than the server's patience, a NAT or firewall
   * that dropped its state, or a restarted host behind a load balancer leave a client with.
   */
  halfOpen(): void {
    for (const conn of this.connections) {
      conn.halfOpen = true;
      conn.upstream.removeAllListeners('close').removeAllListeners('error').on('error', () => undefined).destroy();
    }
  }

  /**
   * Sends new connections to another address from now on and resets the open ones (TCP RST), as a virtual IP or
   * load balancer does when it moves to a promoted replica. The mode is left as it was.
   */
  retarget(host: string, port: number): void {
    this.target = { host, port };
    for (const conn of [...this.connections]) conn.destroy(true);
  }

  /** Destroys every connection and stops listening. */
  async close(): Promise<void> {
    for (const conn of [...this.connections]) conn.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(client: Socket, host: string, port: number): void {
    this.accepted++;
    const upstream = connect({ host, port });
    const conn = new Connection(client, upstream, this);
    this.connections.add(conn);
    const end = () => {
      if (this.connections.delete(conn)) conn.destroy();
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
    for (const pipe of conn.pipes) pipe.kick();
  }
}
