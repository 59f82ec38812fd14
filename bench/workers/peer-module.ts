/**
 * Starts a peer's worker that lives outside dist/ (bench/peers/<peer>/*.mjs, which resolves its own Nest version
 * from that folder's node_modules). WorkerProcess forks dist/bench/workers/<name>.js; this one imports the script
 * named in its parameters (`peerScript`, an absolute path) into the same process, which then reads the same argv
 * and IPC channel as any worker.
 */
import { pathToFileURL } from 'node:url';

const params = JSON.parse(process.argv[2] ?? '{}') as { peerScript?: string };
if (!params.peerScript) {
  process.send?.({ type: 'error', message: 'peer-module started without peerScript' }, () => process.exit(1));
} else {
  await import(pathToFileURL(params.peerScript).href);
}
