import { commandPathOf, HELP_OPTION, VERSION_OPTION, type CommandSpec, type OptionSpec } from './command-line.js';

const HELP_COMMAND = { term: 'help [command]', text: 'display help for command' };

/**
 * The help of the last command of `path` (commander's layout: usage, description, arguments, options, global
 * options, commands), its descriptions wrapped to `width` columns.
 */
export function renderHelp(path: readonly CommandSpec[], width = 100): string {
  const command = path.at(-1)!;
  const isRoot = path.length === 1;
  const own = isRoot ? [VERSION_OPTION, ...(command.options ?? []), HELP_OPTION] : [...(command.options ?? []), HELP_OPTION];
  const global = isRoot ? [] : [VERSION_OPTION, ...(path[0].options ?? [])];
  const args = command.arguments ?? [];
  const commands = command.commands ?? [];

  const sections: { title: string; rows: { term: string; text: string }[] }[] = [
    { title: 'Arguments:', rows: args.map((a) => ({ term: a.name, text: a.description })) },
    { title: 'Options:', rows: own.map(optionRow) },
    { title: 'Global Options:', rows: global.map(optionRow) },
    { title: 'Commands:', rows: commands.length === 0 ? [] : [...commands.map((c) => ({ term: commandTerm(c), text: c.summary ?? c.description })), HELP_COMMAND] },
  ].filter((s) => s.rows.length > 0);
  // One column for every section's terms, as commander aligns them.
  const termWidth = Math.max(...sections.flatMap((s) => s.rows.map((r) => r.term.length)));

  const usage = [commandPathOf(path), '[options]', ...(commands.length > 0 ? ['[command]'] : []), ...args.map((a) => `<${a.name}>`)].join(' ');
  const out = [`Usage: ${usage}`, '', wrap(command.description, width, 0)];
  for (const section of sections) {
    out.push('', section.title);
    for (const row of section.rows) out.push(`  ${row.term.padEnd(termWidth)}  ${wrap(row.text, width, termWidth + 4)}`);
  }
  if (command.helpAfter) out.push(command.helpAfter);
  return `${out.join('\n')}\n`;
}

function optionRow(spec: OptionSpec): { term: string; text: string } {
  const shown = spec.defaultLabel ?? (typeof spec.defaultValue === 'string' ? JSON.stringify(spec.defaultValue) : undefined);
  return { term: spec.flags, text: shown === undefined ? spec.description : `${spec.description} (default: ${shown})` };
}

function commandTerm(command: CommandSpec): string {
  const hasOptions = (command.options ?? []).length > 0;
  return [command.name, ...(hasOptions ? ['[options]'] : []), ...(command.arguments ?? []).map((a) => `<${a.name}>`)].join(' ');
}

/** Wraps `text` at word boundaries to `width` columns; lines after the first are indented by `indent`. */
function wrap(text: string, width: number, indent: number): string {
  const room = width - indent;
  if (room < 40) return text; // too narrow to be worth wrapping
  const lines: string[] = [];
  let current = '';
  for (const word of text.split(/\s+/)) {
    if (current && current.length + 1 + word.length > room) {
      lines.push(current);
      current = word;
    } else {
      current = current ? `${current} ${word}` : word;
    }
  }
  lines.push(current);
  return lines.join(`\n${' '.repeat(indent)}`);
}
