/**
 * Every use of a Nest member that one supported version lacks, in one place, each behind a feature check:
 * - Nest 12 runs processing hooks (tracing spans) around each consumed message (`runWithProcessingHooks`,
 *   `onProcessingStartHook`/`onProcessingEndHook` on `Server`); Nest 11 has none.
 * - Nest 12 calls a dispatch hook on every packet a `ClientProxy` sends (`setOnDispatchHook` / `onDispatchHook`);
 *   Nest 11 has none.
 * Nothing else in the package reaches into Nest's classes.
 */
import type { ClientProxy, ReadPacket, Server } from '@nestjs/microservices';

type ProcessingHooksRunner = (context: unknown, fn: (runEndHook: () => void) => Promise<void>) => Promise<void>;

interface ServerHooks {
  runWithProcessingHooks?: ProcessingHooksRunner;
  onProcessingStartHook?: unknown;
  onProcessingEndHook?: unknown;
}

/**
 * Returns how a server runs one message inside Nest's processing hooks. Call it in the server's constructor: it
 * remembers Nest's default start hook so that, while nobody has set a hook, messages run directly (the hook
 * machinery costs a few closures and promises per message).
 */
export function processingHooksRunner(server: Server): (context: unknown, fn: () => Promise<void>) => Promise<void> {
  const hooks = server as unknown as ServerHooks;
  const defaultStartHook = hooks.onProcessingStartHook;
  return (context, fn) => {
    const runner = hooks.runWithProcessingHooks;
    if (typeof runner !== 'function') return fn(); // Nest 11
    if (hooks.onProcessingStartHook === defaultStartHook && hooks.onProcessingEndHook === undefined) return fn();
    return runner.call(server, context, async (runEndHook: () => void) => {
      await fn();
      runEndHook(); // on failure Nest's runner runs it
    });
  };
}

/** Calls the client's dispatch hook (Nest 12 `setOnDispatchHook`) on a packet about to be sent; nothing on Nest 11. */
export function runDispatchHook(client: ClientProxy, packet: ReadPacket): void {
  const hook = (client as unknown as { onDispatchHook?: (p: ReadPacket) => void }).onDispatchHook;
  if (typeof hook === 'function') hook.call(client, packet);
}
