import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import type { Command } from '../command.js';
import { UsageError } from '../command.js';
import { ScoringInputError, describeIssues, scoreBatch, scoreScenarioSchema } from '../../activities/scoring/index.js';
import type { ProblemScore } from '../../activities/scoring/index.js';

const usage = 'usage: code-a1 score --input SCENARIO.json [--details]';

/** The contract's output shape; `--details` adds every per-pair term (valid, genPass, …). */
function contractView(p: ProblemScore) {
  return {
    questionId: p.questionId,
    codeGroupKept: p.codeGroupKept,
    testCandidatesKept: p.testCandidatesKept,
    candidates: p.candidates.map((c) => ({
      rewardA: c.rewardA,
      advantageA: c.advantageA,
      responses: c.responses.map((r) => ({ rewardB: r.rewardB, advantageB: r.advantageB })),
    })),
    mistakeBook: p.mistakeBook,
  };
}

const score: Command = {
  summary: 'score one iteration from execution outcomes (rewards, advantages, Mistake Book update) and print JSON',
  async run(argv) {
    let values;
    try {
      ({ values } = parseArgs({ args: argv, options: { input: { type: 'string' }, details: { type: 'boolean' } }, strict: true }));
    } catch (err) {
      throw new UsageError(`${(err as Error).message}\n${usage}`);
    }
    if (!values.input) throw new UsageError(`--input is required\n${usage}`);

    let raw: unknown;
    try {
      raw = JSON.parse(await readFile(values.input, 'utf8'));
    } catch (err) {
      console.error(`code-a1 score: cannot read ${values.input}: ${(err as Error).message}`);
      return 1;
    }
    const parsed = scoreScenarioSchema.safeParse(raw);
    if (!parsed.success) {
      console.error(`code-a1 score: invalid input: ${describeIssues(parsed.error).join('; ')}`);
      return 1;
    }
    const { problems, ...algorithm } = parsed.data;
    try {
      const scores = scoreBatch(problems, { ...algorithm, blacklistAfter: 0 });
      const out = values.details ? { problems: scores.problems, metrics: scores.metrics } : { problems: scores.problems.map(contractView) };
      console.log(JSON.stringify(out));
      return 0;
    } catch (err) {
      if (!(err instanceof ScoringInputError)) throw err;
      console.error(`code-a1 score: invalid input: ${err.message}`);
      return 1;
    }
  },
};
export default score;
