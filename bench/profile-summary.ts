/**
 * Summarises a V8 `.cpuprofile`: self time by function and inclusive time by function, plus self time by origin
 * (library, ioredis, Nest, rxjs, node internals, ...).
 *   node dist/bench/profile-summary.js <file.cpuprofile> [top=25] [filter]
 * With a filter, the inclusive table lists only functions whose location contains it (e.g. redis-streams-enterprise).
 */
import { readFileSync } from 'node:fs';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

function origin(url: string, name: string): string {
  if (!url) return name.startsWith('(') ? name : '(native/builtin)';
  if (url.includes('redis-streams-enterprise/dist')) return 'library';
  if (url.includes('/dist/bench/')) return 'bench harness';
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg) return pkg[1];
  if (url.startsWith('node:')) return 'node internals';
  return url;
}

function label(frame: CallFrame): string {
  const file = frame.url
    .replace(/^.*redis-streams-enterprise\/dist\//, 'lib/')
    .replace(/^.*\/dist\/bench\//, 'bench/')
    .replace(/^.*node_modules\//, '')
    .replace(/^file:\/\//, '');
  return `${frame.functionName || '(anonymous)'} ${file}:${frame.lineNumber + 1}`;
}

function main(): void {
  const [file, topArg, filter] = process.argv.slice(2);
  if (!file) throw new Error('usage: profile-summary <file.cpuprofile> [top] [filter]');
  const top = Number(topArg ?? 25);
  const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);

  const self = new Map<string, number>();
  const inclusive = new Map<string, number>();
  const byOrigin = new Map<string, number>();
  let total = 0;
  profile.samples.forEach((id, i) => {
    const dt = profile.timeDeltas[i] ?? 0;
    total += dt;
    const node = byId.get(id);
    if (!node) return;
    const key = label(node.callFrame);
    self.set(key, (self.get(key) ?? 0) + dt);
    const o = origin(node.callFrame.url, node.callFrame.functionName);
    byOrigin.set(o, (byOrigin.get(o) ?? 0) + dt);
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const k = label(byId.get(cur)!.callFrame);
      if (seen.has(k)) continue;
      seen.add(k);
      inclusive.set(k, (inclusive.get(k) ?? 0) + dt);
    }
  });

  const pct = (us: number) => `${((100 * us) / total).toFixed(1).padStart(5)}%`;
  const ms = (us: number) => `${(us / 1000).toFixed(0).padStart(6)} ms`;
  const print = (title: string, map: Map<string, number>, n: number, keep: (k: string) => boolean = () => true) => {
    console.log(`\n${title}`);
    [...map.entries()]
      .filter(([k]) => keep(k))
      .sort((a, b) => b[1] - a[1])
      .slice(0, n)
      .forEach(([k, v]) => console.log(`${pct(v)} ${ms(v)}  ${k}`));
  };
  console.log(`${file}: ${(total / 1000).toFixed(0)} ms sampled`);
  print('self time by origin', byOrigin, 20);
  print('self time by function', self, top);
  print(
    `inclusive time by function${filter ? ` (matching "${filter}")` : ''}`,
    inclusive,
    top,
    (k) => (filter ? k.includes(filter) : !k.startsWith('(root)')),
  );
}

main();
