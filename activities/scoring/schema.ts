import { z } from 'zod';
import { algorithmSchema } from '../../config/run-config.js';
import type { ProblemExecution } from './types.js';

/** Shape of a ProblemExecution; cross-field rules (top-K lengths, duplicates) are scoreProblem's. */
export const problemExecutionSchema = z.strictObject({
  questionId: z.string().min(1),
  mistakeBook: z.array(z.strictObject({ test: z.string().min(1), frequency: z.number().int().min(1) })),
  candidates: z
    .array(
      z.strictObject({
        valid: z.boolean(),
        mistakeBookPassed: z.array(z.boolean()),
        // Empty for a candidate without code: no tests are generated against it (its rewardA is 0).
        responses: z.array(
          z.strictObject({
            nonprintableRatio: z.number().min(0).max(1),
            asserts: z.array(z.strictObject({ test: z.string(), valid: z.boolean(), passed: z.boolean().nullish() })),
          }),
        ),
      }),
    )
    .min(1),
}) satisfies z.ZodType<ProblemExecution>;

/** No two problems of one batch may share a questionId: their Mistake Book pages would collide. */
export const problemListSchema = z.array(problemExecutionSchema).superRefine((problems, ctx) => {
  const seen = new Set<string>();
  problems.forEach((p, i) => {
    if (seen.has(p.questionId)) ctx.addIssue({ code: 'custom', path: [i, 'questionId'], message: `duplicate questionId '${p.questionId}'` });
    seen.add(p.questionId);
  });
});

const a = algorithmSchema.shape;

/** Input of `code-a1 score`: the algorithm settings (run-config defaults) and the problems. */
export const scoreScenarioSchema = z.strictObject({
  alpha: a.alpha,
  testsPerResponse: a.testsPerResponse,
  mistakeBookTopK: a.mistakeBookTopK,
  updateN: a.updateN,
  mistakeBookCap: a.mistakeBookCap,
  dropZeroVarianceGroups: a.dropZeroVarianceGroups,
  problems: problemListSchema,
});

export type ScoreScenario = z.output<typeof scoreScenarioSchema>;

/** `problems[0].candidates[1].valid`: the way a reader finds the field in the JSON. */
export function fieldPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const part of path) out += typeof part === 'number' ? `[${part}]` : `${out ? '.' : ''}${String(part)}`;
  return out || '(root)';
}

/** One line per zod issue, each naming its field; unrecognized keys are named too. */
export function describeIssues(error: z.ZodError): string[] {
  return error.issues.map((issue) => {
    const where = fieldPath(issue.path);
    if (issue.code === 'unrecognized_keys') return issue.keys.map((k) => `${fieldPath([...issue.path, k])}: unknown field`).join('; ');
    return `${where}: ${issue.message}`;
  });
}
