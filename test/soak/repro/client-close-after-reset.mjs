// Reproduction (found by the soak, seed 1): RedisStreamsClient.close() never resolves when the client has made a
// request (send) and its connections were reset once (TCP RST, e.g. a load balancer or a Redis restart).
// Run: npm run build:lib && npx tsc -p test/soak/tsconfig.json && node test/soak/repro/client-close-after-reset.mjs
// Exit 0: close() resolved; exit 1: close() still pending after 15 s (the bug).
import { lastValueFrom } from 'rxjs';
import { RedisStreamsClient } from 'nestjs-redis-streams-enterprise';
import { RedisProcess } from '../../support/redis-process.mjs';
import { TcpProxy } from '../../../dist/soak/test/support/tcp-proxy.js';

const redis = await RedisProcess.start({});
const proxy = await TcpProxy.start('127.0.0.1', redis.port);
const client = new RedisStreamsClient({
  connection: { url: proxy.url },
  streams: { keyPrefix: 'repro' },
  client: { requestTimeoutMs: 500 },
});
// One request (nobody serves it: it times out; a served request behaves the same) starts the reply listener.
const first = await lastValueFrom(client.send('repro.rpc', { n: 1 })).catch((e) => e.name);
console.log('request:', first);
// Reset every connection once; new connections pass.
proxy.setMode('drop');
proxy.setMode('pass');
await new Promise((resolve) => setTimeout(resolve, 1_000));
const started = Date.now();
const outcome = await Promise.race([
  client.close().then(() => 'resolved'),
  new Promise((resolve) => setTimeout(() => resolve('still pending'), 15_000)),
]);
console.log(`client.close(): ${outcome} after ${Date.now() - started} ms (proxy connections open: ${proxy.openConnections})`);
await proxy.close();
await redis.stop();
process.exit(outcome === 'resolved' ? 0 : 1);
