import { createHash } from 'node:crypto';

export interface SeedParts {
  role: 'code' | 'test';
  runSeed: number;
  iteration: number;
  questionId: string;
  /** The candidate a test request attacks; absent for code requests (one per problem). */
  candidateIndex?: number;
}

/**
 * The sampling seed of one request, a pure function of where the request sits in the run, so a
 * retried request (or a resumed activity) asks the server for the same samples again. Hashing
 * rather than adding keeps neighbouring problems and iterations from sharing seed streams, and
 * the role is part of it so the two models never draw from the same stream. 31 bits: every
 * OpenAI-compatible server accepts that range.
 */
export function requestSeed({ role, runSeed, iteration, questionId, candidateIndex }: SeedParts): number {
  const digest = createHash('sha256')
    .update(JSON.stringify([role, runSeed, iteration, questionId, candidateIndex ?? null]))
    .digest();
  return digest.readUInt32BE(0) & 0x7fffffff;
}
