import { InvalidArgumentError, option, parseCommandLine, suggestion, UsageError, type CommandLine, type CommandSpec } from './command-line.js';
import { renderHelp } from './help.js';

const positiveInt = (value: string) => {
  if (!/^\d+$/.test(value) || Number(value) < 1) throw new InvalidArgumentError('expected a positive integer.');
  return Number(value);
};

/** A small tree shaped like the real one: global options, a command with a variadic option, a group of subcommands. */
const tree: CommandSpec = {
  name: 'tool',
  description: 'a tool',
  options: [option('--url <url>', 'where', { defaultValue: 'redis://x' }), option('--json', 'as JSON', { defaultValue: false })],
  commands: [
    {
      name: 'copy',
      description: 'copies',
      options: [
        option('-s, --stream <pattern...>', 'sources', { required: true }),
        option('--max <n>', 'at most', { parse: positiveInt }),
        option('--to-stream <pattern>', 'target', { conflicts: ['resetGroup'] }),
        option('--reset-group <group>', 'other target'),
        option('--dry-run', 'change nothing'),
      ],
      action: () => undefined,
    },
    {
      name: 'dlq',
      description: 'dead letters',
      commands: [
        { name: 'show', description: 'one letter', options: [option('-p, --pattern <pattern>', 'of', { required: true })], arguments: [{ name: 'id', description: 'its id' }], action: () => undefined },
        { name: 'patterns', description: 'all patterns', action: () => undefined },
      ],
    },
  ],
};

const parse = (...argv: string[]) => parseCommandLine(tree, argv);
const invocation = (line: CommandLine) => {
  if (line.kind !== 'run') throw new Error(`expected a command to run, got ${line.kind}`);
  return { command: line.path.map((c) => c.name).join(' '), ...line.invocation };
};
const usageError = (...argv: string[]): string => {
  try {
    parse(...argv);
  } catch (error) {
    if (error instanceof UsageError) return `${error.message} [${error.commandPath}]`;
    throw error;
  }
  throw new Error('expected a usage error');
};

describe('parseCommandLine', () => {
  it('finds the command, applies defaults, and takes global options before or after it', () => {
    expect(invocation(parse('copy', '-s', 'a', '--max', '3', '--to-stream', 'b'))).toEqual({
      command: 'tool copy',
      flags: { stream: ['a'], max: 3, toStream: 'b', url: 'redis://x', json: false },
      args: [],
    });
    expect(invocation(parse('--json', '--url', 'redis://y', 'dlq', 'patterns')).flags).toEqual({ url: 'redis://y', json: true });
    expect(invocation(parse('dlq', 'patterns', '--url=redis://z', '--json')).flags).toEqual({ url: 'redis://z', json: true });
  });

  it('a variadic option takes the words after it, also when repeated; a later option ends it', () => {
    expect(invocation(parse('copy', '--stream', 'a', 'b', '--dry-run', '--stream', 'c', '--to-stream', 'x')).flags).toMatchObject({
      stream: ['a', 'b', 'c'],
      dryRun: true,
    });
    expect(invocation(parse('copy', '-s', 'a', 'b', '--to-stream', 'x')).flags).toMatchObject({ stream: ['a', 'b'] });
  });

  it('positional arguments, and values that look like options after --', () => {
    expect(invocation(parse('dlq', 'show', '-p', 'orders', '1-0'))).toMatchObject({ command: 'tool dlq show', args: ['1-0'], flags: { pattern: 'orders' } });
    expect(invocation(parse('dlq', 'show', '-p', 'orders', '--', '--odd')).args).toEqual(['--odd']);
  });

  it('help and version, anywhere; a group without its subcommand shows its help as an error', () => {
    expect(parse('--help')).toMatchObject({ kind: 'help', isError: false, path: [{ name: 'tool' }] });
    expect(parse('copy', '-h')).toMatchObject({ kind: 'help', isError: false, path: [{ name: 'tool' }, { name: 'copy' }] });
    expect(parse('help', 'dlq', 'show')).toMatchObject({ kind: 'help', isError: false, path: [{}, { name: 'dlq' }, { name: 'show' }] });
    expect(parse('dlq')).toMatchObject({ kind: 'help', isError: true, path: [{}, { name: 'dlq' }] });
    expect(parse()).toMatchObject({ kind: 'help', isError: true });
    expect(parse('-V')).toEqual({ kind: 'version' });
    expect(parse('copy', '--help', '--bogus')).toMatchObject({ kind: 'help' }); // commander: help wins over a later mistake
  });

  it('words each mistake as one line naming the option and the command whose help explains it', () => {
    expect(usageError('copi')).toBe("unknown command 'copi'; did you mean copy? [tool]");
    expect(usageError('dlq', 'nope')).toBe("unknown command 'nope' [tool dlq]");
    expect(usageError('copy', '-s', 'a', '--mxa', '3')).toBe("unknown option '--mxa'; did you mean --max? [tool copy]");
    expect(usageError('copy', '-s', 'a', '--bogus')).toBe("unknown option '--bogus' [tool copy]");
    expect(usageError('copy', '-s', 'a', '-z')).toBe("unknown option '-z' [tool copy]");
    expect(usageError('dlq', 'patterns', '--max', '3')).toBe("unknown option '--max' [tool dlq patterns]"); // another command's option
    expect(usageError('copy', '-s', 'a', '--max')).toBe("option '--max <n>' argument missing [tool copy]");
    expect(usageError('copy', '-s', 'a', '--max', 'many')).toBe("option '--max <n>' argument 'many' is invalid. expected a positive integer. [tool copy]");
    expect(usageError('copy', '-s', 'a', '--dry-run=yes')).toBe("option '--dry-run' does not take a value [tool copy]");
    expect(usageError('copy', '-s', 'a', '--to-stream', 'b', '--reset-group', 'g')).toBe(
      "option '--to-stream <pattern>' cannot be used with option '--reset-group <group>' [tool copy]",
    );
    expect(usageError('copy', '--to-stream', 'b')).toBe("required option '-s, --stream <pattern...>' not specified [tool copy]");
    expect(usageError('dlq', 'show', '-p', 'x')).toBe("missing required argument 'id' [tool dlq show]");
    expect(usageError('dlq', 'show', '-p', 'x', '1', '2')).toBe("too many arguments for 'show'. Expected 1 argument but got 2. [tool dlq show]");
    expect(usageError('dlq', 'patterns', 'extra')).toBe("too many arguments for 'patterns'. Expected 0 arguments but got 1. [tool dlq patterns]");
  });

  it('an error other than InvalidArgumentError in a value parser is a bug, not a usage error: it is rethrown', () => {
    const bug = new TypeError('oops');
    const buggy: CommandSpec = { name: 't', description: 't', options: [option('--n <n>', 'n', { parse: () => { throw bug; } })], commands: [{ name: 'x', description: 'x', action: () => undefined }] };
    expect(() => parseCommandLine(buggy, ['x', '--n', '1'])).toThrow(bug);
  });
});

describe('suggestion', () => {
  it('suggests a near miss only', () => {
    expect(suggestion('--limt', ['--limit', '--from'])).toBe('; did you mean --limit?');
    expect(suggestion('--form', ['--limit', '--from'])).toBe('; did you mean --from?');
    expect(suggestion('--xyz', ['--limit', '--from'])).toBe('');
  });
});

describe('renderHelp', () => {
  it("lists usage, arguments, options with defaults, global options and commands, wrapped to the width", () => {
    const root = renderHelp([tree], 100);
    expect(root).toMatch(/^Usage: tool \[options\] \[command\]\n\na tool\n\nOptions:\n {2}-V, --version +output the version number\n/);
    expect(root).toMatch(/\n {2}--url <url> +where \(default: "redis:\/\/x"\)\n {2}--json +as JSON\n/); // no default shown for a flag
    expect(root).toMatch(/Commands:\n {2}copy \[options\] +copies\n {2}dlq +dead letters\n {2}help \[command\] +display help for command\n$/);
    const show = renderHelp([tree, tree.commands![1], tree.commands![1].commands![0]], 100);
    expect(show).toMatch(/^Usage: tool dlq show \[options\] <id>\n/);
    expect(show).toMatch(/Arguments:\n {2}id +its id\n/);
    expect(show).toMatch(/Global Options:\n {2}-V, --version/);
    const long = renderHelp([{ name: 'w', description: 'word '.repeat(30).trim() }], 60);
    expect(long.split('\n').every((l) => l.length <= 60)).toBe(true);
  });
});
