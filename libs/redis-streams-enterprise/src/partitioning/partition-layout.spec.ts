import { parentsOf, parseLayout, partitionCountOf, readablePartitions, serializeLayout } from './partition-layout.js';

describe('partition layout', () => {
  const layout = { epoch: 2, counts: [4, 8, 4] };

  it('knows the current and the readable partition counts', () => {
    expect(partitionCountOf(layout)).toBe(4);
    expect(readablePartitions(layout)).toBe(8);
  });

  it('round-trips through JSON and refuses malformed layouts', () => {
    expect(parseLayout(serializeLayout(layout))).toEqual(layout);
    expect(parseLayout(null)).toBeUndefined();
    expect(() => parseLayout('{"epoch":1,"counts":[4]}', 'orders')).toThrow(/partition layout stored for "orders" is not valid/);
    expect(() => parseLayout('{"epoch":0,"counts":[0]}')).toThrow(expect.objectContaining({ code: 'INVALID_PARTITION_LAYOUT' }));
  });

  it('growing: old partitions keep their own keys, new ones wait for every old one', () => {
    expect(parentsOf(layout, 0, 1)).toEqual([]);
    expect(parentsOf(layout, 3, 1)).toEqual([]);
    expect(parentsOf(layout, 4, 1)).toEqual([0, 1, 2, 3]);
    expect(parentsOf(layout, 7, 1)).toEqual([0, 1, 2, 3]);
  });

  it('shrinking: remaining partitions wait for the removed ones', () => {
    expect(parentsOf(layout, 0, 2)).toEqual([4, 5, 6, 7]);
    expect(parentsOf(layout, 3, 2)).toEqual([4, 5, 6, 7]);
    expect(parentsOf(layout, 5, 2)).toEqual([]);
  });

  it('epoch 0 and unknown epochs have no parents', () => {
    expect(parentsOf(layout, 5, 0)).toEqual([]);
    expect(parentsOf(layout, 5, 3)).toEqual([]);
  });
});
