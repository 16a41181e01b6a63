import type { ExecuteShardInput, GenerateCodeInput, UpdateMistakeBookInput, UpdatePolicyInput } from '../../workflows/contract.js';
import { recordingStages } from './recording-stages.js';

/** What the stage doubles report: the figures the test expects on the metrics endpoint. */
export const reported = {
  execute: { candidates: 4, validCandidates: 3, asserts: 8, validAsserts: 6, testsRun: 10, testsPassed: 7 },
  generation: { tokensPerSecond: 42.5, generationSeconds: 2 },
  trainer: { tokens_per_s: 1234.5, trained: 1 },
  book: { bookTests: 9, bookProblems: 3 },
};

/**
 * The recording stages, reporting what real stages report, and generateCode fetching `httpUrl`
 * (an HTTP call inside an activity, for the traces).
 */
export function telemetryStages(dir: string, httpUrl: string) {
  const stages = recordingStages({ journal: `${dir}/journal`, gateDir: dir });
  return {
    ...stages,
    async generateCode(i: GenerateCodeInput) {
      const response = await fetch(httpUrl);
      if (!response.ok) throw new Error(`${httpUrl}: ${response.status}`);
      const result = await stages.generateCode(i);
      return { ...result, summary: { ...result.summary, ...reported.generation } };
    },
    async executeShard(i: ExecuteShardInput) {
      const result = await stages.executeShard(i);
      return { ...result, summary: { ...result.summary, ...reported.execute } };
    },
    async updatePolicy(i: UpdatePolicyInput) {
      const result = await stages.updatePolicy(i);
      return { ...result, metrics: { ...result.metrics, ...reported.trainer } };
    },
    async updateMistakeBook(i: UpdateMistakeBookInput) {
      const result = await stages.updateMistakeBook(i);
      return { ...result, summary: { ...result.summary, ...reported.book } };
    },
  };
}
