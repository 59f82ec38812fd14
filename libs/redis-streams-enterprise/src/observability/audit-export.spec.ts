import { auditCsvHeader, auditCsvLine, auditJsonLine, csvCell } from './audit-export.js';
import { toAuditEntry, type AuditEntry } from './audit-trail.js';

const entry: AuditEntry = {
  id: '1700000000000-0',
  at: 1_700_000_000_000,
  actor: '=cmd|"calc"',
  action: 'dlq.purge',
  target: { pattern: 'a,b' },
  params: {},
  result: 'error',
  error: 'line one\nline two',
  counts: { deleted: 0 },
  durationMs: 3,
  correlationId: '-1',
};

describe('audit export', () => {
  it('neutralises formula cells and quotes what needs quoting', () => {
    expect(csvCell('plain')).toBe('plain');
    expect(csvCell('=1+1')).toBe("'=1+1");
    expect(csvCell('+1')).toBe("'+1");
    expect(csvCell('-1')).toBe("'-1");
    expect(csvCell('@SUM(A1)')).toBe("'@SUM(A1)");
    expect(csvCell('say "hi", then\nleave')).toBe('"say ""hi"", then\nleave"');
    expect(auditCsvHeader()).toBe('id,time,actor,action,target,params,result,error,counts,durationMs,correlationId\r\n');
    expect(auditCsvLine(entry)).toBe(
      `1700000000000-0,2023-11-14T22:13:20.000Z,"'=cmd|""calc""",dlq.purge,"{""pattern"":""a,b""}",{},error,"line one\nline two","{""deleted"":0}",3,'-1\r\n`,
    );
  });

  it('writes one JSON document per line', () => {
    const line = auditJsonLine({ ...entry, actor: 'a\u2028b' });
    expect(line.endsWith('\n')).toBe(true);
    expect(line.slice(0, -1)).not.toMatch(/[\n\u2028\u2029]/);
    expect(JSON.parse(line)).toMatchObject({ actor: 'a\u2028b', time: '2023-11-14T22:13:20.000Z' });
  });

  it('reads a stored record defensively: bad JSON, wrong types and control characters', () => {
    const read = toAuditEntry('1-0', { actor: 'x\u001b[31m', action: 'dlq.purge', target: '{"pattern":"p\\n","n":1}', params: 'not json', counts: '{"deleted":"3","ok":2}', result: 'maybe', at: 'soon' });
    expect(read).toMatchObject({ actor: 'x\\x1b[31m', target: { pattern: 'p\\n' }, params: {}, counts: { ok: 2 }, result: 'error', at: 0 });
  });
});
