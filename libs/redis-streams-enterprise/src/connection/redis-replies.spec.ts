import { firstEntryId, parseClaimReply, parseDropBlobsReply, parseFields, parseGroupsInfo, parseNewEntries } from './redis-replies.js';

describe('redis-replies', () => {
  it('parses field lists, skipping names that could reach a prototype', () => {
    const fields = parseFields(['data', '{}', '__proto__', 'x', 'constructor', 'y', 'pattern', 'p']);
    expect(fields).toEqual({ data: '{}', pattern: 'p' });
    expect(Object.getPrototypeOf(fields)).toBe(Object.prototype);
  });

  it('splits new entries from ids whose payload was trimmed', () => {
    const seen: unknown[] = [];
    parseNewEntries([['s', [['1-0', ['data', '1']], ['2-0', null]]]], (stream, entries, deleted) => seen.push({ stream, entries, deleted }));
    expect(seen).toEqual([{ stream: 's', entries: [{ stream: 's', id: '1-0', fields: { data: '1' }, deliveryCount: 1 }], deleted: ['2-0'] }]);
  });

  it('parses the head of a stream and the blob sweep reply', () => {
    expect(firstEntryId([['7-1', ['data', '{}']]])).toBe('7-1');
    expect(firstEntryId([])).toBeUndefined();
    expect(parseDropBlobsReply([3, 2])).toEqual({ unindexed: 3, deleted: 2 });
  });

  it('parses claim script replies and XINFO GROUPS', () => {
    expect(parseClaimReply(['(5-0', [['5-0', ['data', '{}'], 3]], ['4-0']], 's')).toEqual({
      nextCursor: '(5-0',
      entries: [{ stream: 's', id: '5-0', fields: { data: '{}' }, deliveryCount: 3 }],
      deletedIds: ['4-0'],
    });
    expect(parseGroupsInfo([['name', 'g', 'consumers', 2, 'pending', 1, 'last-delivered-id', '9-0', 'entries-read', 9, 'lag', null]])).toEqual([
      { name: 'g', consumers: 2, pending: 1, lastDeliveredId: '9-0', lag: null },
    ]);
  });
});
