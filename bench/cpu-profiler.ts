import { Session } from 'node:inspector';
import { writeFileSync } from 'node:fs';

/**
 * V8 CPU profile of just the measured window (unlike `node --cpu-prof`, which also records start-up and module
 * loading). The result is a `.cpuprofile` for Chrome DevTools or `node dist/bench/profile-summary.js`.
 */
export class WindowProfiler {
  private readonly session = new Session();

  private post(method: string, params: object = {}): Promise<unknown> {
    return new Promise((resolve, reject) =>
      this.session.post(method, params, (error, result) => (error ? reject(error) : resolve(result))),
    );
  }

  async start(): Promise<void> {
    this.session.connect();
    await this.post('Profiler.enable');
    await this.post('Profiler.setSamplingInterval', { interval: 200 });
    await this.post('Profiler.start');
  }

  async stop(path: string): Promise<void> {
    const { profile } = (await this.post('Profiler.stop')) as { profile: unknown };
    writeFileSync(path, JSON.stringify(profile));
    this.session.disconnect();
  }
}
