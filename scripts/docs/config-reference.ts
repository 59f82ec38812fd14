/**
 * Writes docs/configuration.md from the option classes (libs/redis-streams-enterprise/src/config/*.options.ts), so
 * the configuration reference cannot drift from the code: one section per options class, reached from
 * `RedisStreamsEnterpriseOptions` through `@ValidateNested() @Type(() => X)`; per field its path, type, default
 * (the `@default` TSDoc tag, else the initialiser), the bounds its class-validator decorators enforce, and its TSDoc.
 *
 *   node dist/scripts/docs/config-reference.js          write docs/configuration.md
 *   node dist/scripts/docs/config-reference.js --check  exit 1 when docs/configuration.md is not what it would write
 *
 * It reads the source with the TypeScript compiler API (no decorator is executed, nothing is imported), so it works
 * on whatever option classes and decorators are there; an unknown decorator is listed by name.
 */
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const CONFIG_DIR = join(ROOT, 'libs/redis-streams-enterprise/src/config');
const ROOT_FILE = join(CONFIG_DIR, 'redis-streams.options.ts');
const ROOT_CLASS = 'RedisStreamsEnterpriseOptions';
const OUTPUT = join(ROOT, 'docs/configuration.md');

interface Field {
  readonly path: string;
  readonly name: string;
  readonly type: string;
  readonly optional: boolean;
  readonly defaultValue: string;
  readonly rules: string[];
  readonly description: string;
  /** Section path of the nested options class, when the field is one. */
  readonly nested?: string;
}

interface Section {
  readonly path: string;
  readonly className: string;
  readonly file: string;
  readonly description: string;
  readonly fields: Field[];
}

const program = ts.createProgram({
  rootNames: [ROOT_FILE, ...readdirSync(CONFIG_DIR).filter((f) => f.endsWith('.options.ts')).map((f) => join(CONFIG_DIR, f))],
  options: {
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    experimentalDecorators: true,
    strict: true,
    skipLibCheck: true,
    noEmit: true,
  },
});
const checker = program.getTypeChecker();

function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, ' ').trim();
}

/** Text and tags of the TSDoc comment directly above a node. */
function docOf(node: ts.Node): { text: string; tags: Map<string, string> } {
  const tags = new Map<string, string>();
  let text = '';
  for (const doc of ts.getJSDocCommentsAndTags(node)) {
    if (!ts.isJSDoc(doc)) continue;
    text = ts.getTextOfJSDocComment(doc.comment) ?? '';
    for (const tag of doc.tags ?? []) tags.set(tag.tagName.text, oneLine(ts.getTextOfJSDocComment(tag.comment) ?? ''));
  }
  return { text: text.trim(), tags };
}

/** Value of a constant expression in a decorator argument (`86_400_000`, `30 * 86_400_000`, `-1`), or its source. */
function valueText(node: ts.Expression): string {
  const evaluate = (n: ts.Expression): number | undefined => {
    if (ts.isNumericLiteral(n)) return Number(n.text);
    if (ts.isParenthesizedExpression(n)) return evaluate(n.expression);
    if (ts.isPrefixUnaryExpression(n) && n.operator === ts.SyntaxKind.MinusToken) {
      const v = evaluate(n.operand);
      return v === undefined ? undefined : -v;
    }
    if (ts.isBinaryExpression(n)) {
      const [l, r] = [evaluate(n.left), evaluate(n.right)];
      if (l === undefined || r === undefined) return undefined;
      switch (n.operatorToken.kind) {
        case ts.SyntaxKind.AsteriskToken: return l * r;
        case ts.SyntaxKind.PlusToken: return l + r;
        case ts.SyntaxKind.MinusToken: return l - r;
        case ts.SyntaxKind.SlashToken: return l / r;
        default: return undefined;
      }
    }
    return undefined;
  };
  const value = evaluate(node);
  return value === undefined ? node.getText() : String(value);
}

function decoratorsOf(node: ts.PropertyDeclaration): { name: string; args: readonly ts.Expression[] }[] {
  return (ts.getDecorators(node) ?? []).map((d) => {
    const call = d.expression;
    if (ts.isCallExpression(call)) return { name: call.expression.getText(), args: call.arguments };
    return { name: call.getText(), args: [] };
  });
}

/** A string literal, or a `const` initialised with one (`{ message: SAFE_NAME_MESSAGE }`). */
function stringConstant(node: ts.Expression): string | undefined {
  if (ts.isStringLiteralLike(node)) return node.text;
  if (!ts.isIdentifier(node)) return undefined;
  let symbol = checker.getSymbolAtLocation(node);
  if (symbol && symbol.flags & ts.SymbolFlags.Alias) symbol = checker.getAliasedSymbol(symbol);
  const declaration = symbol?.declarations?.find(ts.isVariableDeclaration);
  return declaration?.initializer && ts.isStringLiteralLike(declaration.initializer) ? declaration.initializer.text : undefined;
}

/** `{ message: '...' }` of a decorator's options argument. */
function messageOf(args: readonly ts.Expression[]): string | undefined {
  for (const arg of args) {
    if (!ts.isObjectLiteralExpression(arg)) continue;
    for (const p of arg.properties) {
      if (ts.isPropertyAssignment(p) && p.name.getText() === 'message') {
        const text = stringConstant(p.initializer);
        if (text !== undefined) return text;
      }
    }
  }
  return undefined;
}

function hasEach(args: readonly ts.Expression[]): boolean {
  return args.some((a) => ts.isObjectLiteralExpression(a) && a.properties.some((p) => p.name?.getText() === 'each'));
}

/** What the class-validator decorators of a field enforce, in words. */
function rulesOf(decorators: { name: string; args: readonly ts.Expression[] }[]): string[] {
  const rules: string[] = [];
  const each = (args: readonly ts.Expression[]) => (hasEach(args) ? 'each ' : '');
  for (const { name, args } of decorators) {
    switch (name) {
      case 'IsOptional': case 'ValidateNested': case 'Type': case 'IsObject': case 'IsArray':
        break; // shown by the type column (or the nested section)
      case 'IsInt': rules.push(`${each(args)}integer`); break;
      case 'IsNumber': rules.push(`${each(args)}number`); break;
      case 'IsString': rules.push(`${each(args)}string`); break;
      case 'IsBoolean': rules.push(`${each(args)}boolean`); break;
      case 'IsNotEmpty': rules.push('not empty'); break;
      case 'Min': rules.push(`≥ ${valueText(args[0])}`); break;
      case 'Max': rules.push(`≤ ${valueText(args[0])}`); break;
      case 'ArrayMinSize': rules.push(`at least ${valueText(args[0])} item(s)`); break;
      case 'ArrayMaxSize': rules.push(`at most ${valueText(args[0])} item(s)`); break;
      case 'IsIn': {
        const list = args[0];
        const values = list && ts.isArrayLiteralExpression(list) ? list.elements.map((e) => `\`${e.getText()}\``) : [list?.getText() ?? '?'];
        rules.push(`one of ${values.join(', ')}`);
        break;
      }
      case 'Matches': {
        const message = messageOf(args);
        rules.push(message ?? `matches \`${args[0]?.getText() ?? '?'}\``);
        break;
      }
      default: rules.push(`\`@${name}\``);
    }
  }
  return rules;
}

/** The class an `@Type(() => X)` decorator names. */
function nestedClassOf(decorators: { name: string; args: readonly ts.Expression[] }[]): ts.ClassDeclaration | undefined {
  const type = decorators.find((d) => d.name === 'Type');
  const fn = type?.args[0];
  if (!fn || !(ts.isArrowFunction(fn) || ts.isFunctionExpression(fn))) return undefined;
  const body = ts.isArrowFunction(fn) && !ts.isBlock(fn.body) ? fn.body : undefined;
  if (!body) return undefined;
  let symbol = checker.getSymbolAtLocation(body);
  if (symbol && symbol.flags & ts.SymbolFlags.Alias) symbol = checker.getAliasedSymbol(symbol);
  return symbol?.declarations?.find(ts.isClassDeclaration);
}

function typeOf(prop: ts.PropertyDeclaration): string {
  if (prop.type) return oneLine(prop.type.getText());
  return checker.typeToString(checker.getBaseTypeOfLiteralType(checker.getTypeAtLocation(prop)));
}

/** `@default` text as markdown: a leading literal in code, the remark after it as text. */
function defaultText(prop: ts.PropertyDeclaration, tags: Map<string, string>): string {
  const tag = tags.get('default');
  if (tag !== undefined) {
    if (tag === '') return '—';
    if (tag.startsWith('`')) return tag;
    const m = /^('[^']*'|"[^"]*"|-?[\d_.]+|true|false|undefined|null|\[[^\]]*\])(\s.*)?$/.exec(tag);
    if (m) return `\`${m[1]}\`${m[2] ?? ''}`;
    return tag;
  }
  if (prop.initializer && !ts.isNewExpression(prop.initializer)) return `\`${oneLine(prop.initializer.getText())}\``;
  return '—';
}

const sections: Section[] = [];
const seen = new Set<ts.ClassDeclaration>();
/** Where each class's section is: a class reached a second time (a connection inside a mirror) links to it. */
const sectionPathOf = new Map<ts.ClassDeclaration, string>();

function collect(cls: ts.ClassDeclaration, path: string): void {
  if (seen.has(cls)) return;
  seen.add(cls);
  sectionPathOf.set(cls, path);
  const section: Section = {
    path,
    className: cls.name?.text ?? '(anonymous)',
    file: relative(ROOT, cls.getSourceFile().fileName),
    description: oneLine(docOf(cls).text),
    fields: [],
  };
  sections.push(section);
  const nestedLater: [ts.ClassDeclaration, string][] = [];
  for (const member of cls.members) {
    if (!ts.isPropertyDeclaration(member)) continue;
    const modifiers = ts.getModifiers(member) ?? [];
    if (modifiers.some((m) => m.kind === ts.SyntaxKind.StaticKeyword || m.kind === ts.SyntaxKind.PrivateKeyword || m.kind === ts.SyntaxKind.ProtectedKeyword)) continue;
    if (ts.isPrivateIdentifier(member.name)) continue;
    const name = member.name.getText();
    const decorators = decoratorsOf(member);
    const { text, tags } = docOf(member);
    const type = typeOf(member);
    const fieldPath = path ? `${path}.${name}` : name;
    const nestedClass = nestedClassOf(decorators);
    // An array of nested objects: its fields are written `path[].field`.
    const nestedPath = nestedClass ? (type.endsWith('[]') ? `${fieldPath}[]` : fieldPath) : undefined;
    section.fields.push({
      path: fieldPath,
      name,
      type,
      optional: member.questionToken !== undefined || decorators.some((d) => d.name === 'IsOptional'),
      defaultValue: nestedClass && member.initializer && ts.isNewExpression(member.initializer) ? 'its own defaults' : defaultText(member, tags),
      rules: rulesOf(decorators),
      description: oneLine(text),
      nested: nestedClass ? (sectionPathOf.get(nestedClass) ?? nestedPath) : undefined,
    });
    if (nestedClass && nestedPath) nestedLater.push([nestedClass, nestedPath]);
  }
  for (const [nestedClass, nestedPath] of nestedLater) collect(nestedClass, nestedPath);
}

const rootSource = program.getSourceFile(ROOT_FILE);
const rootClass = rootSource?.statements.find((s): s is ts.ClassDeclaration => ts.isClassDeclaration(s) && s.name?.text === ROOT_CLASS);
if (!rootClass) throw new Error(`class ${ROOT_CLASS} not found in ${relative(ROOT, ROOT_FILE)}`);
collect(rootClass, '');

// Option classes of config/*.options.ts that the root does not reach (yet): documented too, under their class name.
const unreached: ts.ClassDeclaration[] = [];
for (const file of readdirSync(CONFIG_DIR).filter((f) => f.endsWith('.options.ts')).sort()) {
  const source = program.getSourceFile(join(CONFIG_DIR, file));
  for (const s of source?.statements ?? []) {
    if (ts.isClassDeclaration(s) && !seen.has(s) && s.members.some(ts.isPropertyDeclaration)) unreached.push(s);
  }
}

/** Escapes text for a markdown table cell rendered by VitePress (Vue): pipes, and outside code spans `<` and `{{`. */
function cell(text: string): string {
  return text
    .split(/(`[^`]*`)/)
    .map((part) => (part.startsWith('`') && part.endsWith('`') && part.length > 1 ? part.replace(/\|/g, '\\|') : part.replace(/\|/g, '\\|').replace(/</g, '&lt;').replace(/\{\{/g, '&#123;&#123;')))
    .join('');
}

function anchor(path: string): string {
  return path.replace(/\[\]/g, '').replace(/[^A-Za-z0-9]+/g, '-').replace(/^-|-$/g, '').toLowerCase() || 'options';
}

function sectionTitle(section: Section): string {
  return section.path === '' ? `\`${section.className}\` (top level)` : `\`${section.path}\``;
}

/**
 * Hand-written notes printed under the section index: what the option classes' TSDoc does not carry (the rules
 * across fields that `validate-options.ts` checks, and behaviour the hand-written reference of the README described).
 * Keep them short and link the field anchors; the behaviour itself belongs on the feature pages.
 */
const NOTES = `
## Configuration notes {#configuration-notes}

**Rules across fields.** Checked at start together with the per-field rules below, and reported in the same
\`InvalidOptionsError\`:
- [\`consumer.batchSize\`](#consumer-batchsize) must not be greater than [\`consumer.concurrency\`](#consumer-concurrency).
- With [\`consumer.handlerTimeoutMs\`](#consumer-handlertimeoutms) set, [\`consumer.claimIdleMs\`](#consumer-claimidlems)
  must be greater than it.
- [\`retry.backoff.maxDelayMs\`](#retry-backoff-maxdelayms) must not be smaller than [\`retry.backoff.delayMs\`](#retry-backoff-delayms).
- [\`partitioning.partitionCount\`](#partitioning-partitioncount) must lie between \`minPartitions\` and \`maxPartitions\`.
- [\`partitioning.autoScaling\`](#partitioning-autoscaling) needs \`partitioning.strategy: 'dynamic'\`.
- \`ordering.strategy: 'global'\` with partitioning on needs \`partitionCount\` 1 and no \`autoScaling\` (a total order
  needs one partition); use \`partition\` ordering with a key to scale.
- [\`streams.trimming: 'hard'\`](#streams-trimming) needs \`maxLen\` or \`retentionMs\` (without them nothing is trimmed).

**Per field:**
- [\`connection.waitTimeoutMs\`](#connection-waittimeoutms): the longest wait of one emit for its replicas, whatever
  else is in flight: one \`WAIT\` per connection covers every write answered before it was sent, so concurrent emits
  share \`WAIT\`s, and each \`WAIT\`'s timeout is the time left to the oldest waiting emit (design:
  \`transport/replica-waiter.ts\`). See [delivery guarantees](/guarantees).
- [\`connection.cluster\`](#connection-cluster): \`nodes\` are seeds; one server uses three connections (\`Cluster\`
  instances) whatever the number of its patterns: commands, reads, doorbell. See [Redis Cluster](/features/redis-cluster).
- [\`connection.tls\`](#connection-tls): setup, the errors a failed handshake gives and Redis Cluster with TLS are on
  [Security](/features/security#tls).
- [\`streams.maxLen\`](#streams-maxlen), [\`streams.retentionMs\`](#streams-retentionms),
  [\`streams.trimming\`](#streams-trimming): what \`'safe'\` and \`'hard'\` cost and lose, and how losses are counted:
  [delivery guarantees](/guarantees#the-limits-stated-plainly); the status fields: [Operating it](/operations).
- [\`streams.maxPayloadBytes\`](#streams-maxpayloadbytes): a payload whose JSON would be longer than a JavaScript
  string can hold (2^29 − 24 characters) is refused with \`PayloadTooLargeError\` too. Above
  [\`streams.claimCheckThresholdBytes\`](#streams-claimcheckthresholdbytes) payloads go through the
  [claim-check](/features/large-messages).
- [\`consumer.nameLeaseMs\`](#consumer-nameleasems): a running server that finds its name taken by another instance
  logs an error and closes itself (status \`closed\`, \`getStatus().healthy\` false).
- [\`consumer.blockMs\`](#consumer-blockms): with the doorbell (on a Cluster, or \`streams.doorbell: 'always'\`) it is
  the longest wait on the doorbell.
- [\`consumer.claimIdleMs\`](#consumer-claimidlems): entries are claimed into free handler slots only, so later when
  all are busy ([limits](/guarantees#the-limits-stated-plainly)).
- [\`ordering.maxConcurrency\`](#ordering-maxconcurrency): handlers at once per consumer on partitioned topics; replaces
  \`consumer.concurrency\` there. [\`ordering.timeoutMs\`](#ordering-timeoutms) is the causal wait.
- [\`partitioning.strategy\`](#partitioning-strategy): \`hash\`, \`roundRobin\`, \`keyBased\` and \`dynamic\` are
  explained on [ordering and partitioning](/features/ordering-partitioning).
  [\`partitioning.partitionCount\`](#partitioning-partitioncount) applies to new topics only (the layout is stored in
  Redis at first use); with partitioning off, an ordered topic has 1.
  [\`partitioning.rebalanceThreshold\`](#partitioning-rebalancethreshold) is the backlog per partition that makes
  \`dynamic\` grow; [\`partitioning.rebalanceInterval\`](#partitioning-rebalanceinterval) the ms between
  auto-scaling checks.
- [\`schema.versioningStrategy\`](#schema-versioningstrategy): how \`schema.autoEvolution\` numbers a schema registered
  without a version (\`semantic\`: next minor, \`incremental\`, \`timestamp\`); see [schema registry](/features/schema-registry).
`;

const lines: string[] = [];
const out = (line = '') => lines.push(line);

out('---');
out('outline: [2, 2]');
out('---');
out();
out('<!-- Generated by scripts/docs/config-reference.ts from libs/redis-streams-enterprise/src/config/*.options.ts. Do not edit: run `npm run docs:config`. -->');
out();
out('# Configuration reference');
out();
out('Every field is optional. Types are checked with class-validator at start; unknown fields are refused (typos fail),');
out('and an invalid configuration fails the start with one `InvalidOptionsError` that names every bad field.');
out('`developmentConfig` and `productionConfig` are ready-made presets; `RedisConfigFactory.createCustomConfig(base,');
out('overrides)` deep-merges overrides into one. `ConfigValidator.validateConfig(config)` returns `{ valid, errors }`');
out('without throwing; each error has `path`, `rule` and `message`.');
out();
out('This page is generated from the option classes (their TSDoc, `@default` tags, initialisers and class-validator');
out('decorators) by `scripts/docs/config-reference.ts`, and CI fails when it differs from what the code says. The');
out('behaviour behind the options is explained on the feature pages: [Redis Cluster](/features/redis-cluster),');
out('[large messages](/features/large-messages), [ordering and partitioning](/features/ordering-partitioning),');
out('[exactly-once](/features/exactly-once), [schema registry](/features/schema-registry), [replay](/features/replay),');
out('[retries and dead letters](/features/dead-letters). [Configuration notes](#configuration-notes) lists the rules across');
out('fields and what the tables leave out.');
out();
out('| section | class | what it configures |');
out('|---|---|---|');
for (const s of sections) {
  if (s.path === '') continue;
  out(`| [\`${s.path}\`](#${anchor(s.path)}) | \`${s.className}\` | ${cell(s.description)} |`);
}
out();
for (const line of NOTES.trim().split('\n')) out(line);
out();

function writeSection(section: Section, title: string, id: string): void {
  out(`## ${title} {#${id}}`);
  out();
  if (section.description) out(cell(section.description).replace(/\\\|/g, '|'));
  if (section.description) out();
  out(`Class \`${section.className}\` in \`${section.file}\`.`);
  out();
  out('| field | type | default | validation | description |');
  out('|---|---|---|---|---|');
  for (const f of section.fields) {
    // A nested section's field is linked to by its section heading; every other field gets an anchor of its own.
    const fieldCell = f.nested ? `\`${f.path}\`` : `<span id="${anchor(f.path)}"></span>\`${f.path}\``;
    const type = f.nested ? `[\`${f.type}\`](#${anchor(f.nested)})` : `\`${f.type}\``;
    const rules = [...(f.optional ? ['optional'] : []), ...f.rules];
    out(`| ${fieldCell} | ${cell(type)} | ${cell(f.defaultValue)} | ${cell(rules.join(', ') || '—')} | ${cell(f.description)} |`);
  }
  out();
}

for (const s of sections) {
  if (s.path === '') continue;
  writeSection(s, sectionTitle(s), anchor(s.path));
}

if (unreached.length > 0) {
  out('## Other option classes {#other-option-classes}');
  out();
  out(`Classes of \`config/*.options.ts\` that \`${ROOT_CLASS}\` does not reach through \`@ValidateNested() @Type(() => X)\`.`);
  out();
  for (const cls of unreached) {
    const before = sections.length;
    collect(cls, cls.name?.text ?? 'anonymous');
    for (const s of sections.slice(before)) writeSection(s, `\`${s.className}\``, anchor(s.path));
  }
}

const generated = lines.join('\n').replace(/\n+$/, '\n');

if (process.argv.includes('--check')) {
  let current = '';
  try {
    current = readFileSync(OUTPUT, 'utf8');
  } catch {
    // A missing file differs from what would be generated: reported below like any other difference.
  }
  if (current !== generated) {
    const a = current.split('\n');
    const b = generated.split('\n');
    let i = 0;
    while (i < a.length && i < b.length && a[i] === b[i]) i++;
    console.error(`docs/configuration.md is out of date with the option classes (first difference at line ${i + 1}):`);
    console.error(`  committed: ${a[i] ?? '(end of file)'}`);
    console.error(`  generated: ${b[i] ?? '(end of file)'}`);
    console.error('Run `npm run docs:config` and commit docs/configuration.md.');
    process.exit(1);
  }
  console.log(`docs/configuration.md is up to date (${sections.length} option classes, ${sections.reduce((n, s) => n + s.fields.length, 0)} fields)`);
} else {
  writeFileSync(OUTPUT, generated);
  console.log(`wrote docs/configuration.md (${sections.length} option classes, ${sections.reduce((n, s) => n + s.fields.length, 0)} fields)`);
}
