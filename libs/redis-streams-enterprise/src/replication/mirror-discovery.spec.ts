import { StreamKeys } from '../connection/stream-keys.js';
import { MirrorDiscovery } from './mirror-discovery.js';

describe('mirror discovery: which keys are mirrored topic streams', () => {
  const keys = new StreamKeys('app');

  it('reads the tag and partition back from topic stream keys only', () => {
    expect(keys.topicStreamOf(keys.stream('orders.created'))).toEqual({ tag: 'orders.created' });
    expect(keys.topicStreamOf(keys.partition('orders.created', 12))).toEqual({ tag: 'orders.created', partition: 12 });
    expect(keys.topicStreamOf(keys.stream('{"cmd":"sum"}'))).toEqual({ tag: keys.tagOf('{"cmd":"sum"}') });
    for (const other of [keys.deadLetter('a'), keys.replyStream('c1'), keys.doorbell(), keys.schemaVersions('t'), keys.causalDone('g', 'k'), 'other:{a}', keys.mirrorCheckpointOf(keys.stream('a'), 'eu')]) {
      expect(keys.topicStreamOf(other)).toBeUndefined();
    }
  });

  it('keeps the checkpoint in the hash slot of the stream it belongs to', () => {
    const stream = keys.partition('orders', 3);
    expect(keys.mirrorCheckpointOf(stream, 'us-east.1').startsWith(`${stream}:`)).toBe(true);
  });

  it('matches globs against pattern names and exact topics also when hashed', () => {
    const discovery = new MirrorDiscovery(['orders.*', 'exact.one', '{"cmd":"sum"}'], keys, new StreamKeys('target'));
    expect(discovery.matches('orders.created')).toBe(true);
    expect(discovery.matches('exact.one')).toBe(true);
    expect(discovery.matches(keys.tagOf('{"cmd":"sum"}'))).toBe(true);
    expect(discovery.matches('payments.created')).toBe(false);
    expect(discovery.matches('exact.one.more')).toBe(false);
  });
});
