import { gunzipSync, gzipSync } from 'node:zlib';
import { CodecUnavailableError } from '../errors/codec-unavailable.error.js';
import { MessageDecodeError } from '../errors/message-decode.error.js';
import { OptionalDependencyMissingError } from '../errors/optional-dependency-missing.error.js';
import { loadOptional, type RequireFn } from '../runtime/optional-dependency.js';

/** Compression codecs a message may name in its `enc` chain. */
export const COMPRESSION_CODECS = ['gzip', 'lz4', 'snappy'] as const;
export type CompressionCodec = (typeof COMPRESSION_CODECS)[number];

export function isCompressionCodec(name: string): name is CompressionCodec {
  return (COMPRESSION_CODECS as readonly string[]).includes(name);
}

/** The parts of `lz4-napi` used: block format with the uncompressed size prepended (4 bytes, little-endian). */
interface Lz4Package {
  compressSync(data: Buffer): Buffer;
  uncompressSync(data: Uint8Array): Buffer;
}

/** The parts of `snappy` used: raw format, which starts with the uncompressed length as a varint. */
interface SnappyPackage {
  compressSync(input: Uint8Array): Buffer;
  uncompressSync(input: Uint8Array, options: { asBuffer: true }): Buffer;
}

const PACKAGE_OF = { lz4: 'lz4-napi', snappy: 'snappy' } as const;

/**
 * Compresses and decompresses payload bytes with gzip (node:zlib, always there), LZ4 (`lz4-napi`) or Snappy
 * (`snappy`), both optional peers loaded on first use. Decompression is bounded: the size a block declares is checked
 * against the limit before anything is allocated, so a small field cannot expand into gigabytes (a zip bomb).
 */
export class Compressors {
  constructor(
    /** How packages are loaded; a spec passes a fake to simulate a missing package. */
    private readonly requireFn?: RequireFn,
  ) {}

  /**
   * Loads the codec's package, so that a producer configured with a codec whose package is missing fails at start.
   * @throws OptionalDependencyMissingError
   */
  check(codec: CompressionCodec): void {
    if (codec !== 'gzip') this.load(codec);
  }

  /** @throws OptionalDependencyMissingError when the codec's package is not installed. */
  compress(codec: CompressionCodec, input: Buffer): Buffer {
    if (codec === 'gzip') return gzipSync(input);
    if (codec === 'lz4') return this.load<Lz4Package>('lz4').compressSync(input);
    return this.load<SnappyPackage>('snappy').compressSync(input);
  }

  /**
   * @throws CodecUnavailableError when the codec's package is not installed here;
   *   MessageDecodeError when the input is corrupt or would expand beyond `maxBytes`.
   */
  decompress(codec: CompressionCodec, input: Buffer, maxBytes: number): Buffer {
    let output: Buffer;
    try {
      if (codec === 'gzip') {
        output = gunzipSync(input, { maxOutputLength: Math.max(1, maxBytes) });
      } else if (codec === 'lz4') {
        const lz4 = this.loadForReading<Lz4Package>('lz4');
        if (input.length < 4 || input.readUInt32LE(0) > maxBytes) throw new MessageDecodeError(tooLarge(codec, maxBytes));
        output = lz4.uncompressSync(input);
      } else {
        const snappy = this.loadForReading<SnappyPackage>('snappy');
        const declared = snappyLength(input);
        if (declared === undefined || declared > maxBytes) throw new MessageDecodeError(tooLarge(codec, maxBytes));
        output = snappy.uncompressSync(input, { asBuffer: true });
      }
    } catch (error) {
      if (error instanceof MessageDecodeError) throw error;
      throw new MessageDecodeError(`"data" could not be decompressed (${codec}) within streams.maxPayloadBytes: ${(error as Error).message}`, { cause: error });
    }
    if (output.length > maxBytes) throw new MessageDecodeError(tooLarge(codec, maxBytes));
    return output;
  }

  private loadForReading<T>(codec: 'lz4' | 'snappy'): T {
    try {
      return this.load<T>(codec);
    } catch (error) {
      if (!(error instanceof OptionalDependencyMissingError)) throw error;
      throw new CodecUnavailableError(
        codec,
        `the message is compressed with ${codec}, but the package "${PACKAGE_OF[codec]}" is not installed in this consumer ` +
          `(npm install ${PACKAGE_OF[codec]}, then redrive the dead letter)`,
        { cause: error },
      );
    }
  }

  private load<T>(codec: 'lz4' | 'snappy'): T {
    const need = { feature: `${codec} compression`, packages: [PACKAGE_OF[codec]] };
    return this.requireFn ? loadOptional<T>(PACKAGE_OF[codec], need, this.requireFn) : loadOptional<T>(PACKAGE_OF[codec], need);
  }
}

function tooLarge(codec: string, maxBytes: number): string {
  return `"data" (${codec}) is corrupt or would decompress to more than streams.maxPayloadBytes (${maxBytes})`;
}

/** The uncompressed length a Snappy raw block starts with (a little-endian base-128 varint of up to 5 bytes). */
function snappyLength(input: Buffer): number | undefined {
  let value = 0;
  for (let i = 0; i < 5 && i < input.length; i++) {
    value += (input[i] & 0x7f) * 2 ** (7 * i);
    if ((input[i] & 0x80) === 0) return value;
  }
  return undefined;
}
