import { HandlerTimeoutError } from '../errors/handler-timeout.error.js';

/** Runs a handler's work bounded by consumer.handlerTimeoutMs (0: unbounded); the timer never keeps the process alive. */
export function withHandlerTimeout(pattern: string, timeoutMs: number, work: () => Promise<void>): Promise<void> {
  if (timeoutMs <= 0) return work();
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new HandlerTimeoutError(pattern, timeoutMs)), timeoutMs);
    timer.unref();
  });
  return Promise.race([work(), timeout]).finally(() => clearTimeout(timer));
}
