/** A sleep that `wake()` can end early (so close() never waits for a back-off), and that never keeps the process alive. */
export class Sleeper {
  private timer?: NodeJS.Timeout;
  private resolveSleep?: () => void;

  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      this.resolveSleep = resolve;
      this.timer = setTimeout(() => this.wake(), ms);
      this.timer.unref();
    });
  }

  wake(): void {
    clearTimeout(this.timer);
    const resolve = this.resolveSleep;
    this.resolveSleep = undefined;
    resolve?.();
  }
}
