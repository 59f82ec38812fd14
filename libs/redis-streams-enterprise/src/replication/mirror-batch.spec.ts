import { buildMirrorBatch, chunksAtBlobs, MAX_ENTRY_VALUES, ORIGIN_FIELD, ORIGIN_ID_FIELD } from './mirror-batch.js';

describe('buildMirrorBatch', () => {
  it('copies entries born in the source region with every field kept in order and the origin fields added', () => {
    const batch = buildMirrorBatch([{ id: '5-0', fields: ['v', '1', 'data', '{"n":1}', 'data', '{"n":2}'] }], 'A');
    expect(batch.copied).toBe(1);
    expect(batch.args).toEqual(['5-0', '10', 'v', '1', 'data', '{"n":1}', 'data', '{"n":2}', ORIGIN_FIELD, 'A', ORIGIN_ID_FIELD, '5-0']);
  });

  it('skips entries that came into the source from another region (no loops in active-active)', () => {
    const batch = buildMirrorBatch(
      [
        { id: '1-0', fields: ['data', '1', ORIGIN_FIELD, 'B', ORIGIN_ID_FIELD, '9-0'] },
        { id: '2-0', fields: ['data', '2'] },
      ],
      'A',
    );
    expect(batch).toMatchObject({ copied: 1, skipped: 1 });
    expect(batch.args[0]).toBe('2-0');
  });

  it("skips the library's control entries (the source's own partition layout changes)", () => {
    expect(buildMirrorBatch([{ id: '1-0', fields: ['rse.control', 'epoch-end', 'epoch', '1'] }], 'A')).toMatchObject({ copied: 0, skipped: 1 });
  });

  it("keeps the origin id of an entry whose origin is the source region and replaces forged origin fields", () => {
    const batch = buildMirrorBatch([{ id: '3-0', fields: [ORIGIN_FIELD, 'A', ORIGIN_ID_FIELD, '1-1', 'data', 'x'] }], 'A');
    expect(batch.args).toEqual(['3-0', '6', 'data', 'x', ORIGIN_FIELD, 'A', ORIGIN_ID_FIELD, '1-1']);
    const forged = buildMirrorBatch([{ id: '4-0', fields: [ORIGIN_FIELD, 'A', ORIGIN_ID_FIELD, 'not an id', 'data', 'x'] }], 'A');
    expect(forged.args.slice(-2)).toEqual([ORIGIN_ID_FIELD, '4-0']);
  });

  it('rejects entries it cannot copy instead of failing the batch', () => {
    const many = Array.from({ length: MAX_ENTRY_VALUES }, (_, i) => String(i));
    const batch = buildMirrorBatch([{ id: '1-0', fields: ['odd'] }, { id: '2-0', fields: many }, { id: '3-0', fields: ['a', 'b'] }], 'A');
    expect(batch.rejected.map((r) => r.id)).toEqual(['1-0', '2-0']);
    expect(batch.copied).toBe(1);
  });

  it('ends a chunk at every claim-checked entry, so a write carries one blob at most, as its last entry', () => {
    const plain = (id: string) => ({ id, fields: ['data', '1'] });
    const blob = (id: string) => ({ id, fields: ['blob', `b-${id}`, 'size', '9'] });
    const chunks = chunksAtBlobs([plain('1-0'), blob('2-0'), blob('3-0'), plain('4-0')]);
    expect(chunks.map((c) => c.map((e) => e.id))).toEqual([['1-0', '2-0'], ['3-0'], ['4-0']]);
    expect(buildMirrorBatch(chunks[0], 'A').blobId).toBe('b-2-0');
    expect(buildMirrorBatch(chunks[2], 'A').blobId).toBeUndefined();
    expect(buildMirrorBatch([{ id: '5-0', fields: ['blob', 'x', ORIGIN_FIELD, 'B'] }], 'A')).toMatchObject({ copied: 0, skipped: 1 });
    expect(buildMirrorBatch([{ id: '5-0', fields: ['blob', 'x', ORIGIN_FIELD, 'B'] }], 'A').blobId).toBeUndefined();
  });
});
