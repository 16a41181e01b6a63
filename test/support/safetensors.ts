import { writeFile } from 'node:fs/promises';

/** A tensor for `writeSafetensors`: zeros of this shape, in float32 or bfloat16. */
export interface ZeroTensor {
  shape: number[];
  dtype?: 'F32' | 'BF16';
}

/**
 * Writes a safetensors file of zero tensors (the format: an 8-byte little-endian header length, a
 * JSON header of names, dtypes, shapes and byte ranges, then the data). Enough to give a server's
 * loader the names and shapes of a real checkpoint without its gigabytes.
 */
export async function writeSafetensors(path: string, tensors: Record<string, ZeroTensor>, metadata: Record<string, string> = {}): Promise<void> {
  const header: Record<string, unknown> = Object.keys(metadata).length ? { __metadata__: metadata } : {};
  let offset = 0;
  for (const [name, t] of Object.entries(tensors)) {
    const bytes = t.shape.reduce((a, b) => a * b, 1) * (t.dtype === 'BF16' ? 2 : 4);
    header[name] = { dtype: t.dtype ?? 'F32', shape: t.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (json.length % 8)) % 8);
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(json.length));
  await writeFile(path, Buffer.concat([length, Buffer.from(json), Buffer.alloc(offset)]));
}
