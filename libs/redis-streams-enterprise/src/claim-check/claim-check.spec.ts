import { StreamKeys } from '../connection/stream-keys.js';
import { MessageDecodeError } from '../errors/message-decode.error.js';
import { claimCheckApplies, claimCheckOf, fetchClaimChecked } from './claim-check.js';

describe('claim-check', () => {
  const keys = new StreamKeys('app');
  const stream = keys.stream('files.uploaded');
  const entry = (fields: Record<string, string>) => ({ stream, id: '1-0', fields, deliveryCount: 1 });
  const store = (values: Record<string, string>) => ({
    asked: [] as string[],
    async get(key: string) {
      this.asked.push(key);
      return values[key] ?? null;
    },
  });

  it('references payloads above the threshold by their UTF-8 size, and none at or below it or when disabled', () => {
    expect(claimCheckOf('"abc"', 5)).toBeUndefined();
    expect(claimCheckOf('"é"', 3)).toMatchObject({ bytes: 4 });
    expect(claimCheckOf('"é"', 3)?.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(claimCheckOf('x'.repeat(10_000), 0)).toBeUndefined();
    expect(claimCheckApplies({ claimCheckThresholdBytes: 1_024, maxPayloadBytes: 1_048_576 })).toBe(true);
    expect(claimCheckApplies({ claimCheckThresholdBytes: 1_048_576, maxPayloadBytes: 1_048_576 })).toBe(false);
    expect(claimCheckApplies({ claimCheckThresholdBytes: 0, maxPayloadBytes: 1_048_576 })).toBe(false);
  });

  it('fetches the blob beside the stream into data', async () => {
    const redis = store({ [keys.blobOf(stream, 'b1')]: '{"a":1}' });
    await expect(fetchClaimChecked(redis, keys, entry({ blob: 'b1', size: '7', pattern: 'p' }), 100)).resolves.toEqual({
      fields: { blob: 'b1', size: '7', pattern: 'p', data: '{"a":1}' },
    });
    expect(redis.asked).toEqual(['app:{files.uploaded}:blob:b1']);
  });

  it('refuses a gone blob, and a declared size above maxPayloadBytes without fetching it', async () => {
    const gone = await fetchClaimChecked(store({}), keys, entry({ blob: 'b2', size: '7' }), 100);
    expect('invalid' in gone && gone.invalid).toBeInstanceOf(MessageDecodeError);
    expect('invalid' in gone && gone.invalid.message).toMatch(/blob "b2"\) is gone/);
    const redis = store({});
    const large = await fetchClaimChecked(redis, keys, entry({ blob: 'b3', size: '5000' }), 100);
    expect('invalid' in large && large.invalid.message).toMatch(/5000 bytes is larger than streams.maxPayloadBytes \(100\)/);
    expect(redis.asked).toEqual([]);
  });

  it('reports Redis failures as unavailable (retried), not as invalid', async () => {
    const failing = { get: async () => Promise.reject(new Error('connection lost')) };
    await expect(fetchClaimChecked(failing, keys, entry({ blob: 'b4', size: '7' }), 100)).resolves.toMatchObject({ unavailable: expect.any(Error) });
  });
});
