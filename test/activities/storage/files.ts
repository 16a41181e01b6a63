import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';

const MiB = 1024 * 1024;

/**
 * Writes `size` bytes of a random MiB repeated with its index stamped in front, so that a
 * misplaced or repeated part changes the digest, and returns the file's sha256 (hex).
 */
export async function writeStampedFile(path: string, size: number): Promise<string> {
  const block = randomBytes(MiB);
  const hash = createHash('sha256');
  const file = await open(path, 'w');
  try {
    for (let offset = 0, index = 0; offset < size; offset += MiB, index++) {
      block.writeBigUInt64BE(BigInt(index));
      const chunk = block.subarray(0, Math.min(MiB, size - offset));
      hash.update(chunk);
      await file.write(chunk);
    }
  } finally {
    await file.close();
  }
  return hash.digest('hex');
}

export async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(createReadStream(path, { highWaterMark: MiB }), hash);
  return hash.digest('hex');
}
