import { auditCsvHeader, auditCsvLine, auditJsonLine } from '../observability/audit-export.js';
import { CliError, configOf, type CliIo, type GlobalOptions } from './cli-context.js';
import { InvalidArgumentError, option, type CommandSpec, type Invocation } from './command-line.js';
import { parseTime } from './parse.js';

interface ExportFlags extends GlobalOptions {
  readonly since?: number;
  readonly until?: number;
  readonly format: 'jsonl' | 'csv';
}

function parseFormat(value: string): 'jsonl' | 'csv' {
  if (value !== 'jsonl' && value !== 'csv') throw new InvalidArgumentError("expected 'jsonl' or 'csv'.");
  return value;
}

/** `audit export`: the audit trail of operator actions as JSON lines or CSV. */
export function auditCommand(io: CliIo): CommandSpec {
  return {
    name: 'audit',
    summary: 'export the audit trail of operator actions (JSON lines or CSV)',
    description: 'the audit trail of operator actions (<prefix>:{#audit}): who did what, when, with which result',
    commands: [
      {
        name: 'export',
        description:
          'write the audit trail, oldest first, to stdout: one JSON document per line, or CSV (RFC 4180; cells a spreadsheet ' +
          'would run as a formula are prefixed with \')',
        options: [
          option('--since <iso|ms>', 'only actions recorded at or after this time (ISO 8601 or epoch ms)', { parse: parseTime }),
          option('--until <iso|ms>', 'only actions recorded at or before this time (ISO 8601 or epoch ms)', { parse: parseTime }),
          option('--format <jsonl|csv>', 'output format', { defaultValue: 'jsonl', parse: parseFormat }),
        ],
        action: (invocation: Invocation) => exportTrail(io, invocation.flags as unknown as ExportFlags),
      },
    ],
  };
}

async function exportTrail(io: CliIo, flags: ExportFlags): Promise<void> {
  if (flags.since !== undefined && flags.until !== undefined && flags.since > flags.until) {
    throw new CliError(`--since (${new Date(flags.since).toISOString()}) is after --until (${new Date(flags.until).toISOString()})`);
  }
  // Loaded on use, so `--help` does not load ioredis and class-validator.
  const [{ AuditTrail }, { validateOptions }] = await Promise.all([import('../observability/audit-trail.js'), import('../config/validate-options.js')]);
  const trail = new AuditTrail(validateOptions(configOf(flags)));
  try {
    if (flags.format === 'csv') io.stdout.write(auditCsvHeader());
    const query = { ...(flags.since === undefined ? {} : { since: flags.since }), ...(flags.until === undefined ? {} : { until: flags.until }) };
    for await (const entry of trail.entries(query)) io.stdout.write(flags.format === 'csv' ? auditCsvLine(entry) : auditJsonLine(entry));
  } finally {
    await trail.close();
  }
}
